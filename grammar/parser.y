/* Grammar of the .nn language (summary in docs/language.md).
 *
 * A pure, reentrant LALR(1) parser with locations, detailed messages and LAC. Statements end at
 * a newline or ';' (the scanner turns a newline into SEMI when the line could end there, Go
 * style), so the grammar only ever sees SEMI. Semantic values live in the compilation's arena,
 * so error recovery needs no %destructor: nothing is owned outside the arena.
 *
 * %expect 0: if bison reports a conflict, fix it with precedence or by restructuring the rule;
 * never raise the count. */
%define api.pure full
%define api.location.type {Loc}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%param {void *scanner} {ParseCtx *ctx}

%code requires {
#include "grammar/parse.h"
}

%code provides {
int yylex(YYSTYPE *lval, Loc *lloc, void *scanner, ParseCtx *ctx);
void yyerror(Loc *lloc, void *scanner, ParseCtx *ctx, const char *msg);
}

%code {
#include <string.h>

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                 \
	do {                                                            \
		if (N) {                                                    \
			(Cur) = loc_join(YYRHSLOC(Rhs, 1), YYRHSLOC(Rhs, N));   \
		} else {                                                    \
			(Cur) = YYRHSLOC(Rhs, 0);                               \
			(Cur).off = (Cur).end;                                  \
		}                                                           \
	} while (0)

static Node *
mk(ParseCtx *ctx, NodeKind k, Loc loc)
{
	return node_new(ctx->arena, k, loc);
}

/* Finishes a node: computes its depth and rejects absurd nesting (bounded recursion later). */
static Node *
fin(ParseCtx *ctx, Node *n)
{
	if (!node_fix_depth(n)) {
		if (n->depth == AST_MAX_DEPTH + 1)
			diag_error(ctx->diag, n->loc, "nesting too deep (more than %d levels)", AST_MAX_DEPTH);
		n->kind = N_ERROR;
	}
	return n;
}

static Node *
bin(ParseCtx *ctx, int op, Node *l, Node *r, Loc loc)
{
	Node *n = mk(ctx, N_BIN, loc);
	n->ival = op;
	n->kid[0] = l;
	n->kid[1] = r;
	return fin(ctx, n);
}
}

%union {
	int64_t ival;
	double fval;
	const char *str;
	Node *node;
	NodeList list;
}

%token <ival> INT "integer"
%token <fval> FLOAT "float"
%token <str> IDENT "identifier" STRING "string"
%token SEMI "end of statement"
%token IMPORT "import" BLOCK "block" MODEL "model" INPUT "input" OUTPUT "output"
%token RETURN "return" IF "if" ELSE "else" FOR "for" IN "in" AS "as" ASSERT "assert"
%token TRUE "true" FALSE "false" AND "and" OR "or" NOT "not"
%token EQ "==" NE "!=" LE "<=" GE ">=" IDIV "//"

%type <node> item stmt simple if_stmt else_part body expr primary call arg param label loopvars
%type <list> items stmts args arglist params paramlist exprs exprlist names

%right IF ELSE
%left OR
%left AND
%precedence NOT
%nonassoc EQ NE '<' LE '>' GE
%left '+' '-'
%left '*' '/' IDIV '%'
%precedence NEG
%precedence '['

%%

/* file: item* */
file
	: items { ctx->items = $1; }
	;

items
	: %empty { $$ = (NodeList){0}; }
	| items item { $$ = nodelist_append($1, $2); }
	;

/* item: 'import' STRING | NAME '=' expr | 'block' NAME '(' params ')' body | 'model' NAME body */
item
	: IMPORT STRING SEMI { $$ = mk(ctx, N_IMPORT, @2); $$->str = $2; }
	| IDENT '=' expr SEMI { $$ = mk(ctx, N_ASSIGN, @1); $$->str = $1; $$->kid[0] = $3; fin(ctx, $$); }
	| BLOCK IDENT '(' params ')' body {
		$$ = mk(ctx, N_BLOCK, @2); $$->str = $2; $$->kid[0] = $4.head; $$->list = $6->list; fin(ctx, $$);
	}
	| MODEL IDENT body { $$ = mk(ctx, N_MODEL, @2); $$->str = $2; $$->list = $3->list; fin(ctx, $$); }
	| SEMI { $$ = NULL; }
	| error SEMI { $$ = NULL; }
	| error body { $$ = NULL; }
	;

/* params: [param (',' param)* [',']] ; param: NAME ['=' expr] */
params
	: %empty { $$ = (NodeList){0}; }
	| paramlist
	| paramlist ',' { $$ = $1; }
	;

paramlist
	: param { $$ = nodelist_append((NodeList){0}, $1); }
	| paramlist ',' param { $$ = nodelist_append($1, $3); }
	;

param
	: IDENT { $$ = mk(ctx, N_PARAM, @1); $$->str = $1; }
	| IDENT '=' expr { $$ = mk(ctx, N_PARAM, @1); $$->str = $1; $$->kid[0] = $3; fin(ctx, $$); }
	;

/* body: '{' stmt* '}' */
body
	: '{' stmts '}' { $$ = mk(ctx, N_BODY, @1); $$->list = $2.head; fin(ctx, $$); }
	;

stmts
	: %empty { $$ = (NodeList){0}; }
	| stmts stmt { $$ = nodelist_append($1, $2); }
	;

/* stmt: simple SEMI | if_stmt | 'for' names 'in' expr body */
stmt
	: simple SEMI
	| if_stmt
	| FOR loopvars IN expr body {
		$$ = mk(ctx, N_FOR, @1); $$->kid[0] = $2; $$->kid[1] = $4; $$->list = $5->list; fin(ctx, $$);
	}
	| SEMI { $$ = NULL; }
	| error SEMI { $$ = NULL; }
	| error body { $$ = NULL; }
	;

loopvars
	: names { $$ = $1.head; }
	;

names
	: IDENT { Node *n = mk(ctx, N_NAME, @1); n->str = $1; $$ = nodelist_append((NodeList){0}, n); }
	| names ',' IDENT { Node *n = mk(ctx, N_NAME, @3); n->str = $3; $$ = nodelist_append($1, n); }
	;

/* simple: NAME '=' expr | 'input' NAME ':' NAME '[' exprs ']' | 'output' names | 'return' expr
 *       | 'assert' expr [',' STRING] */
simple
	: IDENT '=' expr { $$ = mk(ctx, N_ASSIGN, @1); $$->str = $1; $$->kid[0] = $3; fin(ctx, $$); }
	| INPUT IDENT ':' IDENT '[' exprs ']' {
		$$ = mk(ctx, N_INPUT, @2); $$->str = $2;
		$$->kid[0] = mk(ctx, N_NAME, @4); $$->kid[0]->str = $4; $$->list = $6.head; fin(ctx, $$);
	}
	| OUTPUT names { $$ = mk(ctx, N_OUTPUT, @1); $$->list = $2.head; }
	| RETURN expr { $$ = mk(ctx, N_RETURN, @1); $$->kid[0] = $2; fin(ctx, $$); }
	| ASSERT expr { $$ = mk(ctx, N_ASSERT, @2); $$->kid[0] = $2; fin(ctx, $$); }
	| ASSERT expr ',' STRING {
		$$ = mk(ctx, N_ASSERT, @2); $$->kid[0] = $2;
		$$->kid[1] = mk(ctx, N_STR, @4); $$->kid[1]->str = $4; fin(ctx, $$);
	}
	;

/* if_stmt: 'if' expr body ['else' (if_stmt | body)] */
if_stmt
	: IF expr body else_part {
		$$ = mk(ctx, N_IF, @1); $$->kid[0] = $2; $$->list = $3->list; $$->kid[1] = $4; fin(ctx, $$);
	}
	;

else_part
	: %empty { $$ = NULL; }
	| ELSE body { $$ = $2; }
	| ELSE if_stmt { $$ = $2; }
	;

/* expr: literals, names, calls, lists, x[i], unary/binary operators, `a if c else b` */
expr
	: primary
	| expr IF expr ELSE expr {
		$$ = mk(ctx, N_COND, @$); $$->kid[0] = $3; $$->kid[1] = $1; $$->kid[2] = $5; fin(ctx, $$);
	}
	| expr OR expr { $$ = bin(ctx, OR, $1, $3, @2); }
	| expr AND expr { $$ = bin(ctx, AND, $1, $3, @2); }
	| NOT expr { $$ = mk(ctx, N_UNARY, @1); $$->ival = NOT; $$->kid[0] = $2; fin(ctx, $$); }
	| expr EQ expr { $$ = bin(ctx, EQ, $1, $3, @2); }
	| expr NE expr { $$ = bin(ctx, NE, $1, $3, @2); }
	| expr '<' expr { $$ = bin(ctx, '<', $1, $3, @2); }
	| expr LE expr { $$ = bin(ctx, LE, $1, $3, @2); }
	| expr '>' expr { $$ = bin(ctx, '>', $1, $3, @2); }
	| expr GE expr { $$ = bin(ctx, GE, $1, $3, @2); }
	| expr '+' expr { $$ = bin(ctx, '+', $1, $3, @2); }
	| expr '-' expr { $$ = bin(ctx, '-', $1, $3, @2); }
	| expr '*' expr { $$ = bin(ctx, '*', $1, $3, @2); }
	| expr '/' expr { $$ = bin(ctx, '/', $1, $3, @2); }
	| expr IDIV expr { $$ = bin(ctx, IDIV, $1, $3, @2); }
	| expr '%' expr { $$ = bin(ctx, '%', $1, $3, @2); }
	| '-' expr %prec NEG { $$ = mk(ctx, N_UNARY, @1); $$->ival = '-'; $$->kid[0] = $2; fin(ctx, $$); }
	| expr '[' expr ']' { $$ = mk(ctx, N_INDEX, @2); $$->kid[0] = $1; $$->kid[1] = $3; fin(ctx, $$); }
	;

primary
	: INT { $$ = mk(ctx, N_INT, @1); $$->ival = $1; }
	| FLOAT { $$ = mk(ctx, N_FLOAT, @1); $$->fval = $1; }
	| TRUE { $$ = mk(ctx, N_BOOL, @1); $$->ival = 1; }
	| FALSE { $$ = mk(ctx, N_BOOL, @1); $$->ival = 0; }
	| STRING { $$ = mk(ctx, N_STR, @1); $$->str = $1; }
	| IDENT { $$ = mk(ctx, N_NAME, @1); $$->str = $1; }
	| '(' expr ')' { $$ = $2; }
	| '[' exprs ']' { $$ = mk(ctx, N_LIST, @$); $$->list = $2.head; fin(ctx, $$); }
	| call
	;

/* call: NAME '(' args ')' ['as' (NAME | STRING)] */
call
	: IDENT '(' args ')' { $$ = mk(ctx, N_CALL, @1); $$->str = $1; $$->list = $3.head; fin(ctx, $$); }
	| IDENT '(' args ')' AS label {
		$$ = mk(ctx, N_CALL, @1); $$->str = $1; $$->list = $3.head; $$->kid[0] = $6; fin(ctx, $$);
	}
	;

label
	: IDENT { $$ = mk(ctx, N_NAME, @1); $$->str = $1; }
	| STRING { $$ = mk(ctx, N_STR, @1); $$->str = $1; }
	;

args
	: %empty { $$ = (NodeList){0}; }
	| arglist
	| arglist ',' { $$ = $1; }
	;

arglist
	: arg { $$ = nodelist_append((NodeList){0}, $1); }
	| arglist ',' arg { $$ = nodelist_append($1, $3); }
	;

arg
	: expr { $$ = mk(ctx, N_ARG, @1); $$->kid[0] = $1; fin(ctx, $$); }
	| IDENT '=' expr { $$ = mk(ctx, N_ARG, @1); $$->str = $1; $$->kid[0] = $3; fin(ctx, $$); }
	;

exprs
	: %empty { $$ = (NodeList){0}; }
	| exprlist
	| exprlist ',' { $$ = $1; }
	;

exprlist
	: expr { $$ = nodelist_append((NodeList){0}, $1); }
	| exprlist ',' expr { $$ = nodelist_append($1, $3); }
	;

%%

/* A token's name for messages: keywords and punctuation quoted, token classes bare. */
static const char *
symname(yysymbol_kind_t k, char *buf, size_t n)
{
	const char *s = yysymbol_name(k);
	size_t len = strlen(s);
	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		s++;
		len -= 2;
	}
	static const char *classes[] = {"identifier", "integer", "float", "string", "end of statement", "end of file",
		"invalid token"};
	for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
		if (strlen(classes[i]) == len && strncmp(classes[i], s, len) == 0)
			return classes[i];
	if (s[0] == '\'')
		snprintf(buf, n, "%.*s", (int)len, s);
	else
		snprintf(buf, n, "'%.*s'", (int)len, s);
	return buf;
}

/* "syntax error: unexpected X, expecting A, B or C", plus a note at an unclosed bracket when
 * the error is on a later line (the usual cause: a missing ')' swallows the newline), or at
 * the innermost unclosed '{' when the file ends inside a block. */
static int
yyreport_syntax_error(const yypcontext_t *yyctx, void *scanner, ParseCtx *ctx)
{
	(void)scanner;
	enum { MAXEXP = 5 };
	char msg[512], b[64];
	yysymbol_kind_t exp[MAXEXP];
	const Loc *loc = yypcontext_location(yyctx);
	int k = snprintf(msg, sizeof msg, "syntax error: unexpected %s", symname(yypcontext_token(yyctx), b, sizeof b));
	int n = yypcontext_expected_tokens(yyctx, NULL, 0);
	if (n > 0 && n <= MAXEXP && yypcontext_expected_tokens(yyctx, exp, MAXEXP) == n) {
		for (int i = 0; i < n && k > 0 && (size_t)k < sizeof msg; i++)
			k += snprintf(msg + k, sizeof msg - (size_t)k, "%s%s", i == 0 ? ", expecting " : i == n - 1 ? " or " : ", ",
				symname(exp[i], b, sizeof b));
	}
	if (yypcontext_token(yyctx) == YYSYMBOL_ELSE && k > 0 && (size_t)k < sizeof msg)
		snprintf(msg + k, sizeof msg - (size_t)k, " (`else` goes on the same line as the `}` before it)");
	diag_error(ctx->diag, *loc, "%s", msg);
	if (ctx->paren > 0 && ctx->paren <= PARSE_MAX_OPEN) {
		const Loc *open = &ctx->open[ctx->paren - 1];
		if (open->line < loc->line)
			diag_note(ctx->diag, *open, "'%c' opened here is not closed", open->file->text[open->off]);
	} else if (yypcontext_token(yyctx) == YYSYMBOL_YYEOF && ctx->braces > 0 && ctx->braces <= PARSE_MAX_OPEN) {
		/* the file ended inside a block: a '}' is missing */
		diag_note(ctx->diag, ctx->brace[ctx->braces - 1], "'{' opened here is not closed");
	}
	return 0;
}

void
yyerror(Loc *lloc, void *scanner, ParseCtx *ctx, const char *msg)
{
	(void)scanner;
	if (!msg || strcmp(msg, "memory exhausted") == 0)
		msg = "nesting too deep for the parser";
	diag_error(ctx->diag, *lloc, "%s", msg);
}
