/* Syntax-tree constructors (see ast.h). */
#include "grammar/ast.h"

Node *
node_new(Arena *a, NodeKind k, Loc loc)
{
	Node *n = arena_alloc(a, sizeof *n);
	n->kind = k;
	n->loc = loc;
	n->depth = 1;
	return n;
}

int
node_fix_depth(Node *n)
{
	int d = 0;
	for (int i = 0; i < 3; i++)
		if (n->kid[i] && n->kid[i]->depth > d)
			d = n->kid[i]->depth;
	for (Node *c = n->list; c; c = c->next)
		if (c->depth > d)
			d = c->depth;
	n->depth = d + 1;
	return n->depth <= AST_MAX_DEPTH;
}

NodeList
nodelist_append(NodeList l, Node *n)
{
	if (!n)
		return l;
	if (l.tail)
		l.tail->next = n;
	else
		l.head = n;
	l.tail = n;
	return l;
}

const char *
node_kind_name(NodeKind k)
{
	static const char *names[] = {"int", "float", "bool", "string", "name", "list", "call", "argument",
		"binary", "unary", "index", "conditional", "assignment", "input", "output", "return", "if",
		"body", "for", "assert", "import", "block", "parameter", "model", "error"};
	_Static_assert(sizeof names / sizeof names[0] == N_ERROR + 1, "node names out of step");
	return names[k];
}
