/* Tests tools/cifar_png2bin (the path to the built tool is argv[1]): writes tiny synthetic PNGs
 * with libpng (1024 pixels wide, one HWC image per row) and label JSON files into a temporary
 * folder, runs the tool on them, and checks the HWC -> CHW record layout byte for byte, the
 * label offset, lossless palette and grey input, and each error with its exact message (and
 * that no output or temporary file is left behind after an error). */
#include <dirent.h>
#include <png.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/check.h"



enum { W = 1024, ROWS = 3, REC = 3073 };

static const char *tool;
static char dir[256];
static char path_png[300], path_json[300], path_out[300], path_err[300];

static uint8_t
px(int row, int p, int c)
{
	return (uint8_t)((row * 37 + p * 3 + c * 101) & 255);
}

/* Writes a PNG of `width` x `rows`: color_type RGB (from px), GRAY or PALETTE (value v at
 * pixel p of row r = (r * 5 + p) & 255 in the grey level / palette index), or RGBA. */
static void
write_png(const char *path, int width, int rows, int color_type)
{
	FILE *f = fopen(path, "wb");
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png_create_info_struct(png);
	if (!f || !png || !info || setjmp(png_jmpbuf(png))) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(1);
	}
	png_init_io(png, f);
	png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)rows, 8, color_type, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_color pal[256];
	if (color_type == PNG_COLOR_TYPE_PALETTE) {
		for (int i = 0; i < 256; i++) {
			pal[i].red = (png_byte)i;
			pal[i].green = (png_byte)(255 - i);
			pal[i].blue = (png_byte)(i ^ 0x5a);
		}
		png_set_PLTE(png, info, pal, 256);
	}
	png_write_info(png, info);
	int chans = color_type == PNG_COLOR_TYPE_RGB ? 3 : color_type == PNG_COLOR_TYPE_RGBA ? 4 : 1;
	png_bytep row = malloc((size_t)width * chans);
	for (int r = 0; r < rows; r++) {
		for (int p = 0; p < width; p++) {
			if (chans == 1) {
				row[p] = (png_byte)((r * 5 + p) & 255);
			} else {
				for (int c = 0; c < 3; c++)
					row[p * chans + c] = px(r, p, c);
				if (chans == 4)
					row[p * 4 + 3] = 255;
			}
		}
		png_write_row(png, row);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(row);
	fclose(f);
}

static void
write_bytes(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(1);
	}
}

static void
write_text(const char *path, const char *text)
{
	write_bytes(path, text, strlen(text));
}

/* Runs the tool with (png, json, first, out); returns its exit status, stderr in err. */
static int
convert(const char *png, const char *json, const char *first, const char *out, char *err, size_t errlen)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		FILE *e = freopen(path_err, "w", stderr);
		(void)e;
		execl(tool, tool, png, json, first, out, (char *)NULL);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid)
		exit(1);
	err[0] = 0;
	FILE *f = fopen(path_err, "r");
	if (f) {
		size_t n = fread(err, 1, errlen - 1, f);
		err[n] = 0;
		if (n && err[n - 1] == '\n')
			err[n - 1] = 0;
		fclose(f);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static const char *
fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static const char *
fmt(const char *f, ...)
{
	static char buf[4][512];
	static int k;
	char *b = buf[k++ % 4];
	va_list ap;
	va_start(ap, f);
	vsnprintf(b, sizeof buf[0], f, ap);
	va_end(ap);
	return b;
}

static long
file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Nothing in dir but the test's own files: no output, no temporary file. */
static int
only_inputs(void)
{
	static const char *const mine[] = {".", "..", "in.png", "labels.json", "err.txt", "bad.png"};
	DIR *d = opendir(dir);
	int extra = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int known = 0;
		for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++)
			known |= strcmp(e->d_name, mine[i]) == 0;
		if (!known) {
			fprintf(stderr, "left behind: %s/%s\n", dir, e->d_name);
			extra++;
		}
	}
	if (d)
		closedir(d);
	return d && !extra;
}

static void
test_layout(void)
{
	char err[1024];
	write_png(path_png, W, ROWS, PNG_COLOR_TYPE_RGB);
	/* labels with every kind of JSON whitespace; rows take elements 2, 3, 4 */
	write_text(path_json, "\xef\xbb\xbf [ 9,8 ,\n\t3,\r\n 0 ,7,1]\n");
	CHECK(convert(path_png, path_json, "2", path_out, err, sizeof err) == 0);
	CHECK_STR(err, "");
	CHECK(file_size(path_out) == ROWS * REC);
	FILE *f = fopen(path_out, "rb");
	uint8_t rec[REC];
	int bad = 0;
	const uint8_t labels[ROWS] = {3, 0, 7};
	for (int r = 0; r < ROWS && f; r++) {
		CHECK(fread(rec, 1, REC, f) == REC);
		bad += rec[0] != labels[r];
		for (int c = 0; c < 3; c++)
			for (int p = 0; p < W; p++)
				bad += rec[1 + c * 1024 + p] != px(r, p, c);
	}
	if (f)
		fclose(f);
	CHECK(bad == 0);
	/* spelled out: record 1's red plane starts with pixel 0's R, its green plane at byte
	 * 1 + 1024 holds pixel 0's G, the last byte is pixel 1023's B */
	f = fopen(path_out, "rb");
	CHECK(f && fseek(f, REC, SEEK_SET) == 0 && fread(rec, 1, REC, f) == REC);
	CHECK(rec[0] == 0 && rec[1] == px(1, 0, 0) && rec[2] == px(1, 1, 0));
	CHECK(rec[1 + 1024] == px(1, 0, 1) && rec[REC - 1] == px(1, 1023, 2));
	if (f)
		fclose(f);
	remove(path_out);

	/* grey and palette PNGs expand to RGB exactly */
	write_png(path_png, W, ROWS, PNG_COLOR_TYPE_GRAY);
	CHECK(convert(path_png, path_json, "0", path_out, err, sizeof err) == 0);
	f = fopen(path_out, "rb");
	bad = 0;
	for (int r = 0; r < ROWS && f; r++) {
		CHECK(fread(rec, 1, REC, f) == REC);
		for (int c = 0; c < 3; c++)
			for (int p = 0; p < W; p++)
				bad += rec[1 + c * 1024 + p] != (uint8_t)((r * 5 + p) & 255);
	}
	if (f)
		fclose(f);
	CHECK(bad == 0);
	remove(path_out);
	write_png(path_png, W, ROWS, PNG_COLOR_TYPE_PALETTE);
	CHECK(convert(path_png, path_json, "0", path_out, err, sizeof err) == 0);
	f = fopen(path_out, "rb");
	bad = 0;
	for (int r = 0; r < ROWS && f; r++) {
		CHECK(fread(rec, 1, REC, f) == REC);
		bad += rec[0] != (uint8_t[]){9, 8, 3}[r];
		for (int p = 0; p < W; p++) {
			int v = (r * 5 + p) & 255;
			bad += rec[1 + p] != v || rec[1 + 1024 + p] != 255 - v || rec[1 + 2048 + p] != (v ^ 0x5a);
		}
	}
	if (f)
		fclose(f);
	CHECK(bad == 0);
	remove(path_out);
}

static void
test_errors(void)
{
	char err[1024];
	const char *pre = "cifar_png2bin: error: ";
	write_png(path_png, W, ROWS, PNG_COLOR_TYPE_RGB);

	struct {
		const char *json, *msg;
	} cases[] = {
		/* parsed, then refused element by element (index from 0) */
		{"[1, 2, 10, 3]", "%s: element 2: label 10 is outside 0-9"},
		{"[1,\n -1]", "%s: element 1: label -1 is outside 0-9"},
		{"[1, 2.0, 3]",
		 "%s: element 1: labels must be integers, got 2.0 (a number with a fraction or exponent)"},
		{"[1, 2e0]",
		 "%s: element 1: labels must be integers, got 2.0 (a number with a fraction or exponent)"},
		{"[0, 1, 1e0]",
		 "%s: element 2: labels must be integers, got 1.0 (a number with a fraction or exponent)"},
		{"[1, 2.5]",
		 "%s: element 1: labels must be integers, got 2.5 (a number with a fraction or exponent)"},
		{"[1, \"2\"]", "%s: element 1: labels must be integers, got the string \"2\""},
		{"[1, \"\xc3\xa9\\u0001\"]",
		 "%s: element 1: labels must be integers, got the string \"\\u00E9\\u0001\""},
		{"[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]",
		 "%s: element 0: labels must be integers, got the string \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..."},
		{"[1, [2]]", "%s: element 1: labels must be integers, got an array"},
		{"[1, {\"a\": 2}]", "%s: element 1: labels must be integers, got an object"},
		{"[1, true]", "%s: element 1: labels must be integers, got true"},
		{"[1, 2, null]", "%s: element 2: labels must be integers, got null"},
		/* not an array at the top */
		{"{\"a\": 1}", "%s: expected a JSON array of labels, got an object"},
		{"{\"a\": 1, \"a\": 2}", "%s: expected a JSON array of labels, got an object"},
		{" 7\n", "%s: expected a JSON array of labels, got 7"},
		{"\"x\"", "%s: expected a JSON array of labels, got the string \"x\""},
		{"", "%s: holds no JSON; expected a JSON array of labels"},
		{" \r\n\t", "%s: holds no JSON; expected a JSON array of labels"},
		/* syntax errors: jansson's line, column (where it stopped) and text */
		{"[1, 02]", "%s:1:5: invalid token near '0'"},
		{"[1 2]", "%s:1:4: ']' expected near '2'"},
		{"[1, 2,]", "%s:1:7: unexpected token near ']'"},
		{"[1, 2, 3", "%s:1:8: ']' expected near end of file"},
		{"[1,\n", "%s:2:0: ']' expected near end of file"},
		{"[1, 2, 3] x", "%s:1:11: end of file expected near 'x'"},
		{"[1, 2]\n\n  ]", "%s:3:3: end of file expected near ']'"},
		{"[1, 2][3]", "%s:1:7: end of file expected near '['"},
		{"[1, 99999999999999999999]",
		 "%s:1:24: too big integer near '99999999999999999999'"},
		{"[1, -99999999999999999999]", "%s:1:25: too big negative integer"},
		{"[1, 1E400]", "%s:1:9: real number overflow near '1E400'"},
		{"[1, tru]", "%s:1:7: invalid token near 'tru'"},
		{"[1, \xff]", "%s:1:4: unable to decode byte 0xff"},
		{"[1,\n\t\x01]", "%s:2:2: invalid token near '?'"},
		{"\xef\xbb\xbf\xef\xbb\xbf[1]",
		 "%s:1:1: invalid token near '??" "?'"}, /* no trigraph */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_text(path_json, cases[i].json);
		CHECK(convert(path_png, path_json, "0", path_out, err, sizeof err) == 1);
		CHECK_STR(err, fmt("%s%s", pre, fmt(cases[i].msg, path_json)));
		CHECK(only_inputs());
		remove(path_out); /* one wrongly accepted case fails alone */
	}

	/* a NUL byte, which jansson would take for the end of its input */
	write_bytes(path_json, "[0, 1, 2]\0 x", 12);
	CHECK(convert(path_png, path_json, "0", path_out, err, sizeof err) == 1);
	CHECK_STR(err, fmt("%s%s: byte 9 is a NUL; JSON text has none", pre, path_json));
	write_bytes(path_json, "[0, 1,\0 2]", 10);
	CHECK(convert(path_png, path_json, "0", path_out, err, sizeof err) == 1);
	CHECK_STR(err, fmt("%s%s: byte 6 is a NUL; JSON text has none", pre, path_json));

	/* the size limit: one byte under 16 MiB is read and parsed, 16 MiB is refused */
	size_t limit = 16u << 20;
	char *big = malloc(limit);
	CHECK(big != NULL);
	if (big) {
		memset(big, ' ', limit);
		memcpy(big, "[0, 1, 2", 8);
		big[limit - 2] = ']';
		write_bytes(path_json, big, limit - 1);
		CHECK(convert(path_png, path_json, "0", path_out, err, sizeof err) == 0);
		CHECK(file_size(path_out) == ROWS * REC);
		remove(path_out);
		big[limit - 1] = '\n';
		write_bytes(path_json, big, limit);
		CHECK(convert(path_png, path_json, "0", path_out, err, sizeof err) == 1);
		CHECK_STR(err, fmt("%s%s: 16777216 bytes or more; not a label file", pre, path_json));
		free(big);
	}
	CHECK(only_inputs());

	/* an empty array is a label file, with too few labels for any image */
	write_text(path_json, "[]");
	CHECK(convert(path_png, path_json, "0", path_out, err, sizeof err) == 1);
	CHECK_STR(err, fmt("%s%s: holds 0 labels; %s needs 3 (elements 0 to 2)", pre, path_json,
			   path_png));

	/* too few labels for the rows at this offset */
	write_text(path_json, "[0, 1, 2, 3]");
	CHECK(convert(path_png, path_json, "2", path_out, err, sizeof err) == 1);
	CHECK_STR(err, fmt("%s%s: holds 4 labels; %s needs 3 (elements 2 to 4)", pre, path_json, path_png));
	CHECK(convert(path_png, path_json, "1", path_out, err, sizeof err) == 0); /* 1..3 fits */
	remove(path_out);

	/* images */
	const char *bad_png = fmt("%s/bad.png", dir);
	char bad_copy[256];
	snprintf(bad_copy, sizeof bad_copy, "%s", bad_png);
	write_png(bad_copy, 512, 2, PNG_COLOR_TYPE_RGB);
	CHECK(convert(bad_copy, path_json, "0", path_out, err, sizeof err) == 1);
	CHECK_STR(err, fmt("%s%s: image is 512 pixels wide; expected 1024 (one 32x32 image per row)", pre, bad_copy));
	write_png(bad_copy, W, 2, PNG_COLOR_TYPE_RGBA);
	CHECK(convert(bad_copy, path_json, "0", path_out, err, sizeof err) == 1);
	CHECK_STR(err, fmt("%s%s: PNG has an alpha channel or transparency; expected plain RGB", pre, bad_copy));
	write_text(bad_copy, "GIF89a not a png at all");
	CHECK(convert(bad_copy, path_json, "0", path_out, err, sizeof err) == 1);
	CHECK_STR(err, fmt("%s%s: not a PNG file", pre, bad_copy));
	/* a PNG cut short: libpng's own message follows "bad PNG: " */
	write_png(bad_copy, W, ROWS, PNG_COLOR_TYPE_RGB);
	CHECK(file_size(bad_copy) > 60 && truncate(bad_copy, file_size(bad_copy) - 40) == 0);
	CHECK(convert(bad_copy, path_json, "0", path_out, err, sizeof err) == 1);
	CHECK(strncmp(err, fmt("%s%s: bad PNG: ", pre, bad_copy), strlen(pre) + strlen(bad_copy) + 11) == 0);
	CHECK(convert(fmt("%s/none.png", dir), path_json, "0", path_out, err, sizeof err) == 1);
	CHECK_STR(err, fmt("%s%s/none.png: cannot open: No such file or directory", pre, dir));
	CHECK(convert(path_png, fmt("%s/none.json", dir), "0", path_out, err, sizeof err) == 1);
	CHECK_STR(err, fmt("%s%s/none.json: cannot open: No such file or directory", pre, dir));
	CHECK(only_inputs());
	remove(bad_copy);

	/* usage */
	CHECK(convert(path_png, path_json, "-1", path_out, err, sizeof err) == 2);
	CHECK_STR(err, "cifar_png2bin: error: FIRST must be a non-negative integer, got '-1'");
	CHECK(convert(path_png, path_json, "1x", path_out, err, sizeof err) == 2);
	CHECK(only_inputs());
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_png2bin PATH/TO/cifar_png2bin\n");
		return 2;
	}
	tool = argv[1];
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/nnc-png2bin-test.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path_png, sizeof path_png, "%s/in.png", dir);
	snprintf(path_json, sizeof path_json, "%s/labels.json", dir);
	snprintf(path_out, sizeof path_out, "%s/out.bin", dir);
	snprintf(path_err, sizeof path_err, "%s/err.txt", dir);
	test_layout();
	test_errors();
	remove(path_png);
	remove(path_json);
	remove(path_out);
	remove(path_err);
	if (rmdir(dir) != 0)
		fprintf(stderr, "note: %s not empty\n", dir);
	return check_exit("data_png2bin");
}
