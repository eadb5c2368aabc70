/* file_open_regular (see file.h). */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *
kind_of(mode_t m)
{
	if (S_ISDIR(m))
		return "is a directory, not a regular file";
	if (S_ISFIFO(m))
		return "is a FIFO (named pipe), not a regular file";
	if (S_ISSOCK(m))
		return "is a socket, not a regular file";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "is a device, not a regular file";
	return "is not a regular file";
}

int
file_open_regular(const char *path, const char **why)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		*why = strerror(errno);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		*why = strerror(errno);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*why = kind_of(st.st_mode);
		close(fd);
		return -1;
	}
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		*why = strerror(errno);
		close(fd);
		return -1;
	}
	return fd;
}

char *
file_slurp(FILE *f, size_t limit, size_t *len, const char **why)
{
	size_t cap = 1 << 16, n = 0;
	char *text = malloc(cap + 1);
	for (size_t got; text && (got = fread(text + n, 1, cap - n, f)) > 0;) {
		n += got;
		if (n > limit) {
			free(text);
			*why = strerror(EFBIG);
			return NULL;
		}
		if (n == cap) {
			char *t = realloc(text, cap * 2 + 1);
			if (!t)
				free(text);
			text = t;
			cap *= 2;
		}
	}
	if (!text) {
		*why = strerror(ENOMEM);
		return NULL;
	}
	if (ferror(f)) {
		free(text);
		*why = strerror(EIO);
		return NULL;
	}
	text[n] = 0;
	*len = n;
	return text;
}

FILE *
file_fopen_regular(const char *path, const char **why)
{
	int fd = file_open_regular(path, why);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "rb");
	if (!f) {
		*why = strerror(errno);
		close(fd);
	}
	return f;
}

bool
file_has_suffix(const char *path, const char *suffix)
{
	size_t a = strlen(path), b = strlen(suffix);
	return a >= b && strcmp(path + a - b, suffix) == 0;
}
