/* The syntax tree of a .nn file, built by the parser in the compilation's arena. One Node type
 * serves every construct; `kid` holds fixed children and `list` the first of a chain of
 * children linked by `next` (arguments, statements, list items, parameters). `depth` is the
 * height of the subtree; the parser rejects trees deeper than AST_MAX_DEPTH so that every later
 * recursive walk is bounded. */
#ifndef NNC_AST_H
#define NNC_AST_H

#include <stdint.h>

#include "grammar/diag.h"

typedef enum {
	/* expressions */
	N_INT,    /* ival */
	N_FLOAT,  /* fval */
	N_BOOL,   /* ival */
	N_STR,    /* str */
	N_NAME,   /* str */
	N_LIST,   /* list: items */
	N_CALL,   /* str: callee, list: N_ARG, kid[0]: `as` label (N_NAME or N_STR) or NULL */
	N_ARG,    /* str: keyword or NULL, kid[0]: value */
	N_BIN,    /* ival: operator token, kid[0], kid[1] */
	N_UNARY,  /* ival: operator token, kid[0] */
	N_INDEX,  /* kid[0][kid[1]] */
	N_COND,   /* kid[1] if kid[0] else kid[2] */
	/* statements */
	N_ASSIGN, /* str = kid[0] */
	N_INPUT,  /* input str: kid[0] (N_NAME kind) [list dims] */
	N_OUTPUT, /* list: N_NAME */
	N_RETURN, /* kid[0] */
	N_IF,     /* kid[0] cond, list then, kid[1]: else (N_IF or N_BODY) or NULL */
	N_BODY,   /* list: statements */
	N_FOR,    /* kid[0]: N_NAME chain of loop variables, kid[1]: iterable, list: body */
	N_ASSERT, /* kid[0] cond, kid[1] message (N_STR) or NULL */
	/* top level */
	N_IMPORT, /* str: path */
	N_BLOCK,  /* str: name, kid[0]: N_PARAM chain, list: body */
	N_PARAM,  /* str: name, kid[0]: default or NULL */
	N_MODEL,  /* str: name, list: body */
	N_ERROR,
} NodeKind;

typedef struct Node Node;
struct Node {
	NodeKind kind;
	Loc loc;
	int depth;
	int64_t ival;
	double fval;
	const char *str;
	Node *kid[3];
	Node *list;
	Node *next;
};

typedef struct {
	Node *head, *tail;
} NodeList;

enum { AST_MAX_DEPTH = 200 };

Node *node_new(Arena *a, NodeKind k, Loc loc);
/* Sets n->depth from its children; returns false if it exceeds AST_MAX_DEPTH. */
int node_fix_depth(Node *n);
NodeList nodelist_append(NodeList l, Node *n);
const char *node_kind_name(NodeKind k);

#endif
