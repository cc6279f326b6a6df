#include "orchestrator/transcript.h"
#include "orchestrator/llm.h"
#include "bot/log.h"
#include "bot/store.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

static int
is_user_side(const char *kind)
{
	return strcmp(kind, "person") == 0 || strcmp(kind, "note") == 0;
}

char *
transcript_brain(int64_t conv)
{
	sqlite3_stmt	*s;
	char		*b = NULL;

	s = store_stmt("SELECT brain FROM brain_conversations WHERE"
	    " conversation_id = ?");
	store_bind_int(s, 1, conv);
	if (sqlite3_step(s) == SQLITE_ROW)
		b = store_col_text(s, 0);
	sqlite3_reset(s);
	return b;
}

void
transcript_set_brain(int64_t conv, const char *brain)
{
	sqlite3_stmt	*s;

	s = store_stmt("INSERT OR REPLACE INTO brain_conversations"
	    " (conversation_id, brain) VALUES (?, ?)");
	store_bind_int(s, 1, conv);
	store_bind_text(s, 2, brain);
	if (sqlite3_step(s) != SQLITE_DONE)
		log_warnx("transcript: cannot record the brain of conversation"
		    " %lld: %s", (long long)conv, sqlite3_errmsg(store_db()));
	sqlite3_reset(s);
}

static int64_t
add_text(int64_t conv, const char *kind, const char *body, size_t tokens)
{
	sqlite3_stmt	*s;
	int64_t		 id = 0;

	s = store_stmt("INSERT INTO brain_transcript (conversation_id, kind,"
	    " body, tokens, created_at) VALUES (?, ?, ?, ?, ?)");
	store_bind_int(s, 1, conv);
	store_bind_text(s, 2, kind);
	store_bind_text(s, 3, body);
	store_bind_int(s, 4, (int64_t)tokens);
	store_bind_int(s, 5, wall_s());
	if (sqlite3_step(s) != SQLITE_DONE)
		log_warnx("transcript: insert failed: %s",
		    sqlite3_errmsg(store_db()));
	else
		id = sqlite3_last_insert_rowid(store_db());
	sqlite3_reset(s);
	return id;
}

int64_t
transcript_add(int64_t conv, const char *kind, const json_t *msg)
{
	char	*body;
	int64_t	 id;

	body = json_dumps(msg, JSON_COMPACT);
	/* The JSON framing costs tokens too; the estimate is of the text. */
	id = add_text(conv, kind, body, llm_estimate_tokens(body));
	free(body);
	return id;
}

size_t
transcript_cut(const char *const *kinds, const size_t *tokens, size_t n,
    size_t budget)
{
	size_t	 i, sum = 0, cut = n, last_start = n;

	for (i = n; i-- > 0; ) {
		sum += tokens[i];
		if (!is_user_side(kinds[i]) || (i > 0 &&
		    is_user_side(kinds[i - 1])))
			continue;
		/* i starts an exchange. */
		if (last_start == n)
			last_start = i;
		if (sum <= budget)
			cut = i;
		else
			break;
	}
	if (cut == n)
		cut = last_start == n ? 0 : last_start;
	return cut;
}

json_t *
transcript_load(int64_t conv, size_t budget, size_t *dropped)
{
	sqlite3_stmt	*s;
	char		**kinds = NULL;
	size_t		*tokens = NULL, n = 0, cap = 0, cut, i;
	int64_t		*ids = NULL, first;
	json_t		*out = json_array(), *m;
	const char	*body;

	s = store_stmt("SELECT id, kind, tokens FROM brain_transcript WHERE"
	    " conversation_id = ? ORDER BY id");
	store_bind_int(s, 1, conv);
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			kinds = xrealloc(kinds, cap * sizeof *kinds);
			tokens = xrealloc(tokens, cap * sizeof *tokens);
			ids = xrealloc(ids, cap * sizeof *ids);
		}
		ids[n] = sqlite3_column_int64(s, 0);
		kinds[n] = store_col_text(s, 1);
		tokens[n] = (size_t)sqlite3_column_int64(s, 2);
		n++;
	}
	sqlite3_reset(s);
	cut = transcript_cut((const char *const *)kinds, tokens, n, budget);
	if (dropped != NULL)
		*dropped = cut;
	first = cut < n ? ids[cut] : INT64_MAX;
	for (i = 0; i < n; i++)
		free(kinds[i]);
	free(kinds);
	free(tokens);
	free(ids);
	if (first == INT64_MAX)
		return out;

	s = store_stmt("SELECT body FROM brain_transcript WHERE"
	    " conversation_id = ? AND id >= ? ORDER BY id");
	store_bind_int(s, 1, conv);
	store_bind_int(s, 2, first);
	while (sqlite3_step(s) == SQLITE_ROW) {
		body = (const char *)sqlite3_column_text(s, 0);
		if (body != NULL && (m = json_loads(body, 0, NULL)) != NULL)
			json_array_append_new(out, m);
	}
	sqlite3_reset(s);
	return out;
}

size_t
transcript_count(int64_t conv)
{
	sqlite3_stmt	*s;
	size_t		 n = 0;

	s = store_stmt("SELECT count(*) FROM brain_transcript WHERE"
	    " conversation_id = ?");
	store_bind_int(s, 1, conv);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = (size_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}

char *
transcript_last_kind(int64_t conv, json_t **msg)
{
	sqlite3_stmt	*s;
	char		*kind = NULL;
	const char	*body;

	if (msg != NULL)
		*msg = NULL;
	s = store_stmt("SELECT kind, body FROM brain_transcript WHERE"
	    " conversation_id = ? ORDER BY id DESC LIMIT 1");
	store_bind_int(s, 1, conv);
	if (sqlite3_step(s) == SQLITE_ROW) {
		kind = store_col_text(s, 0);
		body = (const char *)sqlite3_column_text(s, 1);
		if (msg != NULL && body != NULL)
			*msg = json_loads(body, 0, NULL);
	}
	sqlite3_reset(s);
	return kind;
}

void
transcript_inbox_add(int64_t conv, const char *kind, const char *text,
    const char *by, int wakes)
{
	sqlite3_stmt	*s;

	s = store_stmt("INSERT INTO brain_inbox (conversation_id, kind, body,"
	    " by, wakes, created_at) VALUES (?, ?, ?, ?, ?, ?)");
	store_bind_int(s, 1, conv);
	store_bind_text(s, 2, kind);
	store_bind_text(s, 3, text);
	store_bind_text(s, 4, by);
	store_bind_int(s, 5, wakes);
	store_bind_int(s, 6, wall_s());
	if (sqlite3_step(s) != SQLITE_DONE)
		log_warnx("transcript: inbox insert failed: %s",
		    sqlite3_errmsg(store_db()));
	sqlite3_reset(s);
}

int
transcript_inbox_take(int64_t conv, char **by, int *wakes)
{
	sqlite3_stmt	*s;
	json_t		*m;
	char		*kind, *text, *who;
	int		 n = 0;
	struct item {
		char	*kind, *text;
	}		*items = NULL;
	int		 i, cap = 0;

	*by = NULL;
	*wakes = 0;
	s = store_stmt("SELECT kind, body, by, wakes FROM brain_inbox WHERE"
	    " conversation_id = ? ORDER BY id");
	store_bind_int(s, 1, conv);
	while (sqlite3_step(s) == SQLITE_ROW) {
		kind = store_col_text(s, 0);
		text = store_col_text(s, 1);
		who = store_col_text(s, 2);
		if (sqlite3_column_int(s, 3))
			*wakes = 1;
		if (*by == NULL && who != NULL)
			*by = xstrdup(who);
		free(who);
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			items = xrealloc(items, cap * sizeof *items);
		}
		items[n].kind = kind;
		items[n].text = text;
		n++;
	}
	sqlite3_reset(s);
	if (n == 0)
		return 0;
	store_begin();
	for (i = 0; i < n; i++) {
		m = json_pack("{s:s, s:s}", "role", "user", "text",
		    items[i].text != NULL ? items[i].text : "");
		transcript_add(conv, items[i].kind, m);
		json_decref(m);
		free(items[i].kind);
		free(items[i].text);
	}
	free(items);
	s = store_stmt("DELETE FROM brain_inbox WHERE conversation_id = ?");
	store_bind_int(s, 1, conv);
	sqlite3_step(s);
	sqlite3_reset(s);
	if (store_commit() != 0)
		log_warnx("transcript: moving the inbox of conversation %lld"
		    " failed", (long long)conv);
	return n;
}

int
transcript_inbox_pending(int64_t *out, int n)
{
	sqlite3_stmt	*s;
	int		 count = 0;

	s = store_stmt("SELECT DISTINCT conversation_id FROM brain_inbox"
	    " WHERE wakes = 1 ORDER BY conversation_id");
	while (sqlite3_step(s) == SQLITE_ROW && count < n)
		out[count++] = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return count;
}

int64_t
transcript_turn_begin(int64_t conv, const char *brain, const char *by,
    int acts)
{
	sqlite3_stmt	*s;
	int64_t		 id = 0;

	s = store_stmt("INSERT INTO brain_turns (conversation_id, brain, by,"
	    " acts, status, started_at) VALUES (?, ?, ?, ?, 'running', ?)");
	store_bind_int(s, 1, conv);
	store_bind_text(s, 2, brain);
	store_bind_text(s, 3, by);
	store_bind_int(s, 4, acts);
	store_bind_int(s, 5, wall_s());
	if (sqlite3_step(s) == SQLITE_DONE)
		id = sqlite3_last_insert_rowid(store_db());
	sqlite3_reset(s);
	return id;
}

void
transcript_turn_end(int64_t turn, const char *status, int rounds,
    long tokens_in, long tokens_out, double cost, double model_ms,
    double own_ms, const char *error)
{
	sqlite3_stmt	*s;

	s = store_stmt("UPDATE brain_turns SET status = ?, rounds = ?,"
	    " tokens_in = ?, tokens_out = ?, cost_usd = ?, model_ms = ?,"
	    " own_ms = ?, error = ?, ended_at = ? WHERE id = ?");
	store_bind_text(s, 1, status);
	store_bind_int(s, 2, rounds);
	store_bind_int(s, 3, tokens_in);
	store_bind_int(s, 4, tokens_out);
	sqlite3_bind_double(s, 5, cost);
	sqlite3_bind_double(s, 6, model_ms);
	sqlite3_bind_double(s, 7, own_ms);
	store_bind_text(s, 8, error);
	store_bind_int(s, 9, wall_s());
	store_bind_int(s, 10, turn);
	if (sqlite3_step(s) != SQLITE_DONE)
		log_warnx("transcript: turn %lld update failed: %s",
		    (long long)turn, sqlite3_errmsg(store_db()));
	sqlite3_reset(s);
}

int
transcript_turns_cut(int64_t *turns, int64_t *convs, char **bys, int n)
{
	sqlite3_stmt	*s;
	int		 count = 0;

	s = store_stmt("SELECT id, conversation_id, by FROM brain_turns"
	    " WHERE status = 'running' ORDER BY id");
	while (sqlite3_step(s) == SQLITE_ROW && count < n) {
		turns[count] = sqlite3_column_int64(s, 0);
		convs[count] = sqlite3_column_int64(s, 1);
		bys[count] = store_col_text(s, 2);
		count++;
	}
	sqlite3_reset(s);
	return count;
}

double
transcript_cost_since(const char *brain, int64_t since_s)
{
	sqlite3_stmt	*s;
	double		 c = 0;

	s = store_stmt("SELECT COALESCE(sum(cost_usd), 0) FROM brain_turns"
	    " WHERE brain = ? AND started_at >= ?");
	store_bind_text(s, 1, brain);
	store_bind_int(s, 2, since_s);
	if (sqlite3_step(s) == SQLITE_ROW)
		c = sqlite3_column_double(s, 0);
	sqlite3_reset(s);
	return c;
}
