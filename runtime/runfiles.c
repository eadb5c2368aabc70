/* run_lock, metrics_reconcile (see runfiles.h). */
#include "runtime/runfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"

int
run_lock(RunLock *l, const char *path, const char *who, char *err, size_t errlen)
{
	l->fd = -1;
	l->path = malloc(strlen(path) + 6);
	if (!l->path) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	sprintf(l->path, "%s.lock", path);
	/* Retried while the file we locked is not the one at the path any more: a holder that
	 * just finished removed it after we opened it (then another run may make a new one). */
	for (int tries = 0; tries < 100; tries++) {
		int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
		if (fd < 0) {
			snprintf(err, errlen, "%s: cannot create the lock file %s: %s (is the folder writable?)", path, l->path,
				strerror(errno));
			break;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
			int e = errno;
			char holder[256] = "";
			ssize_t n = e == EWOULDBLOCK ? pread(fd, holder, sizeof holder - 1, 0) : -1;
			holder[n > 0 ? n : 0] = 0;
			holder[strcspn(holder, "\n")] = 0;
			close(fd);
			if (e == EWOULDBLOCK)
				snprintf(err, errlen, "%s is in use by another run (%s); wait for it to finish or give another path",
					path, holder[0] ? holder : "its holder is unknown");
			else
				snprintf(err, errlen, "%s: cannot lock %s: %s", path, l->path, strerror(e));
			break;
		}
		struct stat a, b;
		if (fstat(fd, &a) != 0 || stat(l->path, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
			close(fd);
			continue;
		}
		char line[512];
		int len = snprintf(line, sizeof line, "%s\n", who);
		if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
			snprintf(err, errlen, "%s: cannot write the lock file %s: %s", path, l->path, strerror(errno));
			close(fd);
			break;
		}
		l->fd = fd;
		return 0;
	}
	free(l->path);
	l->path = NULL;
	return -1;
}

void
run_unlock(RunLock *l)
{
	if (l->fd >= 0) {
		unlink(l->path); /* while still holding it: whoever opened it before retries (above) */
		close(l->fd);
	}
	free(l->path);
	l->fd = -1;
	l->path = NULL;
}

long
metrics_reconcile(const char *path, const char *header, long rows, char *err, size_t errlen)
{
	const char *why;
	FILE *f = file_fopen_regular(path, &why);
	char *text = NULL;
	size_t len = 0;
	if (f) {
		text = file_slurp(f, (size_t)1 << 30, &len, &why);
		fclose(f);
		if (!text) {
			snprintf(err, errlen, "%s: cannot read metrics: %s", path, why);
			return -1;
		}
	} else if (errno != ENOENT || strcmp(why, strerror(ENOENT)) != 0) {
		snprintf(err, errlen, "%s: cannot read metrics: %s", path, why);
		return -1;
	}
	/* the bytes to keep: the header line, then up to ROWS complete lines */
	size_t keep = 0;
	long have = 0;
	bool header_ok = !header;
	if (header && text) {
		char *nl = memchr(text, '\n', len);
		header_ok = nl != NULL;
		keep = nl ? (size_t)(nl - text) + 1 : 0;
	}
	while (text && header_ok && have < rows) {
		char *nl = memchr(text + keep, '\n', len - keep);
		if (!nl)
			break; /* a torn last line: cut */
		keep = (size_t)(nl - text) + 1;
		have++;
	}
	FILE *w = fopen(path, header_ok && text ? "r+" : "w");
	int rc = 0;
	if (!w) {
		rc = -1;
	} else if (!header_ok || !text) {
		if (header && fprintf(w, "%s\n", header) < 0)
			rc = -1;
	} else if (ftruncate(fileno(w), (off_t)keep) != 0 || fseek(w, 0, SEEK_END) != 0) {
		rc = -1;
	}
	if (w && (fflush(w) != 0 || (fsync(fileno(w)) != 0 && errno != EINVAL)))
		rc = -1;
	if (w && fclose(w) != 0)
		rc = -1;
	free(text);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot write metrics: %s", path, strerror(errno));
		return -1;
	}
	return have;
}

int
metrics_append(void *fp, const char *line)
{
	FILE *f = fp;
	if (fprintf(f, "%s\n", line) < 0 || fflush(f) != 0)
		return -1;
	if (fsync(fileno(f)) != 0 && errno != EINVAL) /* EINVAL: a pipe or terminal, nothing to sync */
		return -1;
	return 0;
}
