/*
 * driver-stream — what the claude and codex drivers share: the one-line steps
 * shown on the card for a tool use, and the redaction that keeps secrets out
 * of them.
 *
 * A step is built from the tool's input (a command line, a path), which the
 * model wrote and which may hold a token it found in the environment; so
 * every step goes through driver_redact, which masks NAME=value assignments,
 * --token=value style flags and words that look like credentials.  It errs on
 * the side of masking: a step is a glance at what happens, not a log.
 */
#include "orchestrator/driver.h"
#include "orchestrator/agent.h"
#include "orchestrator/render.h"
#include "bot/util.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEP_MAX	120

/*
 * Each with its length: a step's every word is checked against them all.
 * A token is more than 8 bytes past its prefix, so a word of up to
 * PREFIX_MIN + 8 bytes is none (most are): PREFIX refuses to compile a
 * shorter prefix.
 */
#define PREFIX_MIN	3
#define PREFIX(s)	{ s, sizeof s - 1 + \
			    0 * sizeof(char[sizeof s - 1 >= PREFIX_MIN ? 1 : -1]) }
static const struct {
	const char	*s;
	size_t		 n;
} token_prefixes[] = { PREFIX("sk-"), PREFIX("sk_"), PREFIX("xoxb-"),
    PREFIX("xoxp-"), PREFIX("xoxa-"), PREFIX("xapp-"), PREFIX("ghp_"),
    PREFIX("gho_"), PREFIX("ghu_"), PREFIX("ghs_"), PREFIX("github_pat_"),
    PREFIX("glpat-"), PREFIX("AKIA"), PREFIX("ASIA"), PREFIX("AIza"),
    PREFIX("ya29."), PREFIX("eyJ") };
static const char *const secret_words[] = { "token", "secret", "password",
    "passwd", "key", "auth", "credential" };

/* NAME=value with NAME like an environment variable (upper case). */
static int
is_env_assignment(const char *w, size_t n, size_t *eq)
{
	size_t	 i;
	int	 upper = 0;

	for (i = 0; i < n && w[i] != '='; i++) {
		if (isupper((unsigned char)w[i]))
			upper = 1;
		else if (!isdigit((unsigned char)w[i]) && w[i] != '_')
			return 0;
	}
	if (i == 0 || i >= n - 1 || !upper || isdigit((unsigned char)w[0]))
		return 0;
	*eq = i;
	return 1;
}

/* --api-key=value, --password=value, token=value... */
static int
is_secret_flag(const char *w, size_t n, size_t *eq)
{
	const char	*p;
	size_t		 i, k;
	char		 name[64];

	if ((p = memchr(w, '=', n)) == NULL || p == w || p == w + n - 1)
		return 0;
	k = (size_t)(p - w);
	if (k >= sizeof name)
		return 0;
	for (i = 0; i < k; i++)
		name[i] = (char)tolower((unsigned char)w[i]);
	name[k] = '\0';
	for (i = 0; i < nitems(secret_words); i++)
		if (strstr(name, secret_words[i]) != NULL) {
			*eq = k;
			return 1;
		}
	return 0;
}

/* A long word mixing upper and lower case letters and digits. */
static int
looks_random(const char *w, size_t n)
{
	size_t	 i;
	int	 up = 0, low = 0, dig = 0;

	if (n < 24)
		return 0;
	for (i = 0; i < n; i++) {
		if (isupper((unsigned char)w[i]))
			up = 1;
		else if (islower((unsigned char)w[i]))
			low = 1;
		else if (isdigit((unsigned char)w[i]))
			dig = 1;
		else if (strchr("-_+/=.", w[i]) == NULL)
			return 0;
	}
	return up && low && dig;
}

static int
has_token_prefix(const char *w, size_t n)
{
	size_t	 i, k;

	/* Quotes around a word do not hide it. */
	while (n > 0 && (*w == '"' || *w == '\'')) {
		w++;
		n--;
	}
	if (n <= PREFIX_MIN + 8)
		return 0;
	for (i = 0; i < nitems(token_prefixes); i++) {
		k = token_prefixes[i].n;
		if (w[0] == token_prefixes[i].s[0] && n > k + 8 &&
		    memcmp(w, token_prefixes[i].s, k) == 0)
			return 1;
	}
	return 0;
}

/*
 * Written straight into one allocation: a word becomes at most "***" (or
 * NAME= and "***" for a longer one), so the text grows at most threefold.
 */
char *
driver_redact(const char *text)
{
	const char	*p = text, *w;
	size_t		 n, eq, len = 0;
	int		 mask_next = 0;
	char		*out;

	out = xmalloc(3 * strlen(text) + 1);
	while (*p != '\0') {
		if (isspace((unsigned char)*p)) {
			/* A run of it in one go ('\0' is not a space). */
			for (w = p; isspace((unsigned char)*p); p++)
				;
			memcpy(out + len, w, (size_t)(p - w));
			len += (size_t)(p - w);
			continue;
		}
		w = p;
		while (*p != '\0' && !isspace((unsigned char)*p))
			p++;
		n = (size_t)(p - w);
		if (mask_next) {
			memcpy(out + len, "***", 3);
			len += 3;
			mask_next = 0;
		} else if (is_env_assignment(w, n, &eq) ||
		    is_secret_flag(w, n, &eq)) {
			memcpy(out + len, w, eq + 1);
			memcpy(out + len + eq + 1, "***", 3);
			len += eq + 4;
		} else if (has_token_prefix(w, n) || looks_random(w, n)) {
			memcpy(out + len, "***", 3);
			len += 3;
		} else {
			memcpy(out + len, w, n);
			len += n;
			/* "Bearer X", "--password X", "-p X" after a secret word */
			if ((n == 6 && strncasecmp(w, "bearer", 6) == 0) ||
			    (n > 2 && w[0] == '-' && w[1] == '-' &&
			    memchr(w, '=', n) == NULL && (strstr(w, "token") ||
			    strstr(w, "password") || strstr(w, "secret") ||
			    strstr(w, "api-key") || strstr(w, "apikey"))))
				mask_next = 1;
		}
	}
	out[len] = '\0';
	return out;
}

static const char *
str_of(const json_t *input, const char *key)
{
	return json_string_value(json_object_get(input, key));
}

const char *
driver_relative(const char *path, const char *cwd)
{
	size_t	 n;

	if (path == NULL || cwd == NULL || (n = strlen(cwd)) == 0)
		return path;
	if (strncmp(path, cwd, n) == 0 && path[n] == '/' && path[n + 1] != '\0')
		return path + n + 1;
	return path;
}

/* a, b and c in one string: a step's "%s %s", without a format's cost. */
static char *
cat3(const char *a, const char *b, const char *c)
{
	size_t	 na = strlen(a), nb = strlen(b), nc = strlen(c);
	char	*s = xmalloc(na + nb + nc + 1);

	memcpy(s, a, na);
	memcpy(s + na, b, nb);
	memcpy(s + na + nb, c, nc + 1);
	return s;
}

enum drv_tool
driver_tool_kind(const char *tool, const char **key, const char **key2)
{
	enum drv_tool	 k;

	*key = *key2 = NULL;
	if (tool == NULL)
		return DRV_TOOL_OTHER;
	if (strcmp(tool, "Edit") == 0 || strcmp(tool, "MultiEdit") == 0 ||
	    strcmp(tool, "Write") == 0 || strcmp(tool, "Read") == 0 ||
	    strcmp(tool, "NotebookEdit") == 0) {
		*key = "file_path";
		*key2 = "notebook_path";
		return DRV_TOOL_FILE;
	}
	if (strcmp(tool, "Bash") == 0 || strcmp(tool, "shell") == 0)
		k = DRV_TOOL_RUN, *key = "command";
	else if (strcmp(tool, "Grep") == 0)
		k = DRV_TOOL_GREP, *key = "pattern";
	else if (strcmp(tool, "Glob") == 0)
		k = DRV_TOOL_GLOB, *key = "pattern";
	else if (strcmp(tool, "WebFetch") == 0)
		k = DRV_TOOL_FETCH, *key = "url";
	else if (strcmp(tool, "WebSearch") == 0)
		k = DRV_TOOL_WEB, *key = "query";
	else if (strcmp(tool, "Task") == 0)
		k = DRV_TOOL_TASK, *key = "description";
	else if (strcmp(tool, "TodoWrite") == 0)
		k = DRV_TOOL_TODO, *key = "todos";
	else
		k = DRV_TOOL_OTHER;
	return k;
}

/* A step's text, redacted and cut to one line. */
static char *
step_finish(char *raw)
{
	char	*red, *out;

	red = driver_redact(raw);
	out = render_oneline(red, STEP_MAX);
	free(raw);
	free(red);
	return out;
}

char *
driver_tool_step_of(const char *tool, enum drv_tool kind, const char *v,
    const char *cwd)
{
	const char	*p;
	char		*raw;

	if (tool == NULL)
		tool = "tool";
	switch (kind) {
	case DRV_TOOL_FILE:
		raw = cat3(tool, " ", v != NULL ? driver_relative(v, cwd) :
		    "a file");
		break;
	case DRV_TOOL_RUN:
		raw = cat3("Run: ", v != NULL ? v : "?", "");
		break;
	case DRV_TOOL_GREP:
	case DRV_TOOL_GLOB:
		raw = cat3(kind == DRV_TOOL_GREP ? "Search: " : "Find: ",
		    v != NULL ? v : "?", "");
		break;
	case DRV_TOOL_FETCH:
		raw = cat3("Fetch ", v != NULL ? v : "a page", "");
		break;
	case DRV_TOOL_WEB:
		raw = cat3("Search the web: ", v != NULL ? v : "?", "");
		break;
	case DRV_TOOL_TASK:
		raw = cat3("Subagent: ", v != NULL ? v : "a task", "");
		break;
	default:
		if (strncmp(tool, "mcp__", 5) == 0 &&
		    (p = strstr(tool + 5, "__")) != NULL)
			raw = xasprintf("%.*s: %s", (int)(p - tool - 5),
			    tool + 5, p + 2);
		else
			raw = xstrdup(tool);
		break;
	}
	return step_finish(raw);
}

char *
driver_tool_step(const char *tool, const json_t *input, const char *cwd)
{
	enum drv_tool	 kind;
	const char	*v, *p, *key, *key2;
	char		*raw;
	json_t		*todos, *t;
	size_t		 i, done = 0;

	if ((kind = driver_tool_kind(tool, &key, &key2)) != DRV_TOOL_TODO) {
		v = key != NULL ? str_of(input, key) : NULL;
		if (v == NULL && key2 != NULL)
			v = str_of(input, key2);
		return driver_tool_step_of(tool, kind, v, cwd);
	}
	todos = json_object_get(input, "todos");
	v = NULL;
	json_array_foreach(todos, i, t) {
		p = str_of(t, "status");
		if (p != NULL && strcmp(p, "completed") == 0)
			done++;
		else if (v == NULL && p != NULL &&
		    strcmp(p, "in_progress") == 0)
			v = str_of(t, "content");
	}
	raw = xasprintf("Plan: %zu/%zu done%s%s", done,
	    json_array_size(todos), v != NULL ? " · now: " : "",
	    v != NULL ? v : "");
	return step_finish(raw);
}

void
drv_stream_free(struct drv_stream *st)
{
	free(st->cwd);
	free(st->last_msg_id);
	free(st->last_text);
	free(st->own_failure);
	st->cwd = st->last_msg_id = st->last_text = st->own_failure = NULL;
}

/* The stream parsers' events, for a running agent (arg). */
void
driver_emit_to_agent(void *arg, enum drv_event ev, const char *text)
{
	struct agent	*a = arg;

	switch (ev) {
	case DRV_PROGRESS:
		agent_progress(a, text);
		break;
	case DRV_SESSION:
		agent_set_session(a, text);
		break;
	case DRV_SUMMARY:
		agent_set_summary(a, text);
		break;
	case DRV_FAIL:
		agent_fail(a, text);
		break;
	}
}

void
driver_fmt_usd(char *buf, size_t len, double usd)
{
	int	 dec = 2;
	double	 v;
	size_t	 n;

	/* Enough decimals for 3 significant digits below $1, up to 6. */
	if (usd > 0 && usd < 1) {
		for (dec = 0, v = usd; v < 1 && dec < 4; v *= 10)
			dec++;
		dec += 2;
	}
	snprintf(buf, len, "$%.*f", dec, usd);
	/* "$0.00800" → "$0.008", but keep cents: "$1.50". */
	n = strlen(buf);
	while (dec > 2 && n > 0 && buf[n - 1] == '0') {
		buf[--n] = '\0';
		dec--;
	}
}

char *
driver_tail_lines(const char *raw, char *(*line_text)(const json_t *))
{
	struct buf	 b = { 0 };
	const char	*p = raw, *nl;
	size_t		 n;
	json_t		*j;
	char		*t;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (n > 0 && *p == '{' &&
		    (j = json_loadb(p, n, 0, NULL)) != NULL) {
			t = line_text(j);
			json_decref(j);
			if (t != NULL && *t != '\0')
				buf_printf(&b, "%s\n", t);
			free(t);
		} else if (n > 0 && (*p == '{' || (p[n - 1] == '}' &&
		    memmem(p, n, "\":", 2) != NULL)))
			;	/* a JSON line cut by the ring: noise */
		else if (n > 0) {
			buf_add(&b, p, n);
			buf_adds(&b, "\n");
		}
		p += n;
		if (*p == '\n')
			p++;
	}
	if (b.data == NULL)
		return xstrdup("");
	return buf_steal(&b);
}
