#!/bin/sh
# Peak memory of every model's training step and inference, with memory reuse (the memplan
# pass) and without (--no-reuse: one region per value), at batch 128, per precision; the
# table goes to stdout and, with -o FILE, to a Markdown file (bench/results/).
set -eu
cd "$(dirname "$0")/.."
out=""
if [ "${1:-}" = "-o" ]; then out=$2; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
	echo "# Memory planning: arena sizes with reuse vs one region per value ($(date -u +%Y-%m-%d))"
	echo
	echo "Batch 128, MB (10^6 bytes) of the act arena, which holds every transient value; parameters,"
	echo "optimizer state and inputs are the same either way (bench/memory.sh, nnc compile [--no-reuse];
fusion on, the default: bench/results/fusion-*.md shows what it saves). "Most alive at once":
the largest total of values alive at one step, a lower bound for any placement."
	echo
	echo "| model | precision | training step, reuse | most alive at once | no reuse | ratio | inference, reuse | no reuse | ratio |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for f in models/*.nn; do
		m=$(basename "$f" .nn)
		for p in fp32 fp16 mixed; do
			build/nnc compile --precision $p "$f" -o "$tmp/a.plan" 2>/dev/null
			build/nnc compile --precision $p --no-reuse "$f" -o "$tmp/b.plan" 2>/dev/null
			ta=$(sed -n 's/^arenas: .*act: \([0-9]*\)}/\1/p' "$tmp/a.plan")
			tb=$(sed -n 's/^arenas: .*act: \([0-9]*\)}/\1/p' "$tmp/b.plan")
			lt=$(build/nnc compile --precision $p --dump-ir=memplan "$f" 2>/dev/null | sed -n 's/.*; memory: .*most alive at once: \([0-9]*\) B.*/\1/p' | head -1 | awk '{ printf "%.1f", $1 / 1e6 }')
			ia=$(build/nnc stats "$f" | sed -n 's/^memory, inference: .*act \([0-9.]*\) MB (most alive at once [0-9.]* MB, without reuse \([0-9.]*\) MB)/\1 \2/p')
			awk -v m="$m" -v p="$p" -v ta="$ta" -v tb="$tb" -v lt="$lt" -v ia="$ia" 'BEGIN { split(ia, i, " ");
				printf "| %s | %s | %.1f | %.1f | %.1f | %.2fx | %s | %s | %.1fx |\n", m, p, ta / 1e6, lt, tb / 1e6, tb / ta,
				p == "fp32" ? sprintf("%.1f", i[1]) : "", p == "fp32" ? sprintf("%.1f", i[2]) : "",
				p == "fp32" ? i[2] / i[1] : 0 }' | sed 's/| 0.0x |$/| |/'
		done
	done
} >"$tmp/table.md"
cat "$tmp/table.md"
[ -z "$out" ] || cp "$tmp/table.md" "$out"
