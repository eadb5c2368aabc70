/* The files a training run writes besides its checkpoint's contents, kept safe against a second
 * run and against a kill at any instant (nnrun train; docs/training.md, "Interruptions"):
 *
 *  - A lock per output path (the checkpoint, the metrics file): PATH.lock, held with flock for
 *    the run's life and holding who took it, so a second run on the same path refuses to start
 *    and names the first. The kernel drops the lock when the holder dies, so a lock file left by
 *    kill -9 is no obstacle; a clean exit removes it.
 *  - The metrics file holds exactly one row per finished epoch. The checkpoint saved at an
 *    epoch's end records how many epochs are finished and that epoch's row; the row is written
 *    after the checkpoint. On resume, metrics_reconcile drops rows (and a torn last line) beyond
 *    what the checkpoint finished, and writes the checkpoint's row if the kill came between the
 *    checkpoint and the row. */
#ifndef NNC_RUNFILES_H
#define NNC_RUNFILES_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
	int fd;
	char *path; /* PATH.lock */
} RunLock;

/* Takes the lock of PATH (creating PATH.lock beside it, which also proves the folder writable),
 * recording WHO (e.g. "pid 123, nnrun train r20.plan, started ..."). Returns 0, or -1 with a
 * message: PATH is in use (naming the holder), or PATH.lock cannot be created. */
int run_lock(RunLock *l, const char *path, const char *who, char *err, size_t errlen);
/* Releases the lock and removes PATH.lock (no-op on a lock not taken). */
void run_unlock(RunLock *l);

/* Makes metrics file PATH (CSV with HEADER as its first line, or JSON Lines when HEADER is NULL)
 * hold exactly ROWS complete rows: rows beyond are cut (with a torn last line); when it holds
 * ROWS - 1 and LAST_ROW is given, LAST_ROW (a line without its newline) is appended. A missing
 * file is created. Returns the rows it now holds (fewer than ROWS when rows are missing that no
 * checkpoint holds), or -1 with a message. */
long metrics_reconcile(const char *path, const char *header, long rows, const char *last_row, char *err, size_t errlen);

/* Appends LINE and a newline to F and makes it durable (fflush, fsync). Returns 0, or -1 with
 * errno set (a full disk shows here, not at fclose). */
int metrics_append(void *f, const char *line);

#endif
