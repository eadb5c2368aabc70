/* nnc tune-precision where the build has no runtime (NNC_RUNTIME_COMPONENTS off, while
 * bootstrapping): the options still parse, the command says why it cannot run. */
#include <stdio.h>

#include "cli/tune.h"

int
tune_precision(const TuneOptions *o)
{
	(void)o;
	fprintf(stderr, "nnc tune-precision: this nnc was built without the runtime (NNC_RUNTIME_COMPONENTS off)\n");
	return NNC_EUSAGE;
}

bool
tune_parse_budget(const char *s, TuneBudget *b, char *err, size_t errlen)
{
	(void)s;
	(void)b;
	snprintf(err, errlen, "tune-precision is not built in (no runtime)");
	return false;
}
