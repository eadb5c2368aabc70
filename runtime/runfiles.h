/* The files a training run writes besides its checkpoint's contents, kept safe against a second
 * run and against a kill at any instant (nnrun train; docs/training.md, "Interruptions"):
 *
 *  - A lock per output path (the checkpoint, the metrics file): PATH.lock, held with flock for
 *    the run's life and holding who took it, so a second run on the same path refuses to start
 *    and names the first. The kernel drops the lock when the holder dies, so a lock file left by
 *    kill -9 is no obstacle; a clean exit removes it.
 *  - The metrics file holds exactly one row per finished epoch. At an epoch's end the row is
 *    written and synced first, then the checkpoint saved; the checkpoint records how many epochs
 *    are finished. A kill between the two leaves one row more than the checkpoint finished; on
 *    resume, metrics_reconcile cuts rows (and a torn last line) beyond what the checkpoint
 *    finished, and the repeated epoch writes its row again, once.
 */
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
 * hold at most ROWS complete rows: rows beyond are cut, and a torn last line. A missing file is
 * created. Returns the rows it now holds (fewer than ROWS when rows are missing), or -1 with a
 * message. */
long metrics_reconcile(const char *path, const char *header, long rows, char *err, size_t errlen);

/* Appends LINE and a newline to F and makes it durable (fflush, fsync). Returns 0, or -1 with
 * errno set (a full disk shows here, not at fclose). */
int metrics_append(void *f, const char *line);

#endif
