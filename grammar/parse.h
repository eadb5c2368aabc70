/* Entry point of the front end: source text -> chain of top-level Nodes. Syntax errors are
 * reported through the Diag and parsing resumes at the next statement, so one run reports
 * several errors; the returned chain holds what could be parsed. */
#ifndef NNC_PARSE_H
#define NNC_PARSE_H

#include "grammar/ast.h"

enum { PARSE_MAX_OPEN = 64 };

typedef struct {
	Arena *arena;
	Diag *diag;
	const SrcFile *file;
	void *scanner;
	NodeList items;
	/* scanner state */
	int paren;     /* depth of ( and [ : newlines inside them are not statement ends */
	Loc open[PARSE_MAX_OPEN]; /* where the innermost open brackets were opened */
	int braces;    /* depth of { } */
	bool utf8_said; /* a UTF-8 character outside a string was reported (once per file) */
	Loc brace[PARSE_MAX_OPEN]; /* where the innermost open braces were opened */
	int last;      /* previous token, for newline-as-semicolon insertion */
	size_t off;    /* byte offset of the next character */
	int line, col; /* of the next character */
} ParseCtx;

Node *parse_source(Arena *a, Diag *d, const SrcFile *f);

#endif
