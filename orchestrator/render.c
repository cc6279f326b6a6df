#include "orchestrator/render.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

char *
render_elapsed(int64_t s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		return xasprintf("%llds", (long long)s);
	if (s < 3600)
		return xasprintf("%lldm%02llds", (long long)(s / 60),
		    (long long)(s % 60));
	return xasprintf("%lldh%02lldm", (long long)(s / 3600),
	    (long long)(s % 3600 / 60));
}

/*
 * Whitespace runs become one space, control bytes go; at most max bytes
 * (then cut at a character and "…").  Only what can be shown is walked:
 * a step can be a many-KB command line, and this runs twice per step.
 */
char *
render_oneline(const char *text, size_t max)
{
	const char	*p;
	size_t		 n, cap, len = 0;
	int		 space = 0;
	char		*s;

	n = strlen(text);
	cap = n < max + 1 ? n : max + 1;
	s = xmalloc(cap + 4);		/* room for "…" and the NUL */
	for (p = text; *p != '\0' && len <= max; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ') {
			space = len > 0;
			continue;
		}
		if ((unsigned char)*p < 0x20)
			continue;
		if (space) {
			s[len++] = ' ';
			space = 0;
			if (len > max)
				break;
		}
		s[len++] = *p;
	}
	s[len] = '\0';
	if (len > max) {
		utf8_truncate(s, max > 1 ? max - 1 : max);
		strcat(s, "…");
	}
	return s;
}

char *
render_card(const struct render_card *c)
{
	struct buf	 b = { 0 };
	char		*el;
	size_t		 i, nfiles = 0;

	el = render_elapsed(c->elapsed_s);
	buf_printf(&b, "#%lld %s · %s · %s · `%s`", (long long)c->id, c->name,
	    c->state, el, c->branch != NULL ? c->branch : "(no branch yet)");
	free(el);
	if (c->waiting != NULL)
		buf_printf(&b, "\nwaiting for an answer to %s", c->waiting);
	for (i = 0; c->steps != NULL && c->steps[i] != NULL; i++)
		buf_printf(&b, "\n• %s", c->steps[i]);
	for (i = 0; c->files != NULL && c->files[i] != NULL; i++)
		nfiles++;
	if (nfiles > 0) {
		buf_printf(&b, "\nfiles:");
		for (i = 0; i < nfiles && i < 8; i++)
			buf_printf(&b, " %s", c->files[i]);
		if (nfiles > 8)
			buf_printf(&b, " (+%zu more)", nfiles - 8);
	}
	return buf_steal(&b);
}

char *
render_question(int64_t qid, int64_t agent_id, const char *text,
    const char *const *choices)
{
	struct buf	 b = { 0 };
	size_t		 i;

	buf_printf(&b, "❓ q%lld from #%lld: %s", (long long)qid,
	    (long long)agent_id, text);
	if (choices != NULL && choices[0] != NULL) {
		buf_printf(&b, "\nchoices:");
		for (i = 0; choices[i] != NULL; i++)
			buf_printf(&b, " %zu) %s", i + 1, choices[i]);
	}
	buf_printf(&b, "\n(reply in this thread%s)",
	    choices != NULL && choices[0] != NULL ? ", or pick a choice" : "");
	return buf_steal(&b);
}

char *
render_question_settled(int64_t qid, int64_t agent_id, const char *text,
    const char *state, const char *answer, const char *by)
{
	if (answer != NULL)
		return xasprintf("✅ q%lld from #%lld: %s\nanswered by %s: %s",
		    (long long)qid, (long long)agent_id, text,
		    by != NULL ? by : "?", answer);
	return xasprintf("✖ q%lld from #%lld: %s\n(%s)", (long long)qid,
	    (long long)agent_id, text, state);
}

char *
render_result(const struct render_result *r)
{
	struct buf	 b = { 0 };
	const char	*mark;

	mark = strcmp(r->state, "done") == 0 || strcmp(r->state, "idle") == 0 ?
	    "✅" : "⚠️";
	buf_printf(&b, "%s #%lld %s", mark, (long long)r->id, r->state);
	if (r->term_signal != 0)
		buf_printf(&b, " (killed by signal %d)", r->term_signal);
	else if (r->exit_code != 0)
		buf_printf(&b, " (exit %d)", r->exit_code);
	buf_printf(&b, " on `%s`", r->branch != NULL ? r->branch : "-");
	if (r->summary != NULL && *r->summary != '\0')
		buf_printf(&b, "\n%s", r->summary);
	if (r->diffstat != NULL && *r->diffstat != '\0')
		buf_printf(&b, "\n%s", r->diffstat);
	if (r->tail != NULL && *r->tail != '\0')
		buf_printf(&b, "\noutput tail:\n%s", r->tail);
	return buf_steal(&b);
}

char *
render_help(void)
{
	return xstrdup(
	    "I run coding agents for this thread. Commands:\n"
	    "  status          what every agent here is doing\n"
	    "  new TASK        start another agent in this thread\n"
	    "  #N TEXT         follow-up for agent N\n"
	    "  cancel #N       stop agent N\n"
	    "  diff #N [PATH]  agent N's full diff (a file when long)\n"
	    "  log #N          agent N's output, all turns\n"
	    "  push #N         push agent N's branch to the repo's remote\n"
	    "  pr #N           open a pull request for agent N's branch\n"
	    "  merge #N        queue agent N's branch for merging into base\n"
	    "  resolve #N      hand merge conflicts to agent N\n"
	    "  cleanup #N      remove agent N's worktree (its branch stays)\n"
	    "  qN ANSWER       answer question N (a plain reply works when"
	    " only one is open)\n"
	    "  help            this text");
}

size_t
render_split(const char *text, size_t max, char ***out)
{
	const char	*p = text;
	size_t		 n = 0, len, cut, i;
	char		**v = NULL;

	if (max < 8)
		max = 8;
	do {
		len = strlen(p);
		cut = len;
		if (len > max) {
			cut = max;
			/* Prefer a line break in the last quarter. */
			for (i = max; i > max - max / 4; i--)
				if (p[i - 1] == '\n') {
					cut = i;
					break;
				}
			while (cut > 0 && ((unsigned char)p[cut] & 0xc0) == 0x80)
				cut--;
		}
		v = xrealloc(v, (n + 2) * sizeof *v);
		v[n++] = xstrndup(p, cut);
		v[n] = NULL;
		p += cut;
	} while (*p != '\0');
	*out = v;
	return n;
}
