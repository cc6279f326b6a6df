/*
 * matrix-send — outbound ops: messages, thread replies, edits, reactions.
 *
 * A question (a POST with choices) shows its choices as "1️⃣ GitHub  2️⃣
 * Google" and is pre-reacted with those keys as part of the same op: the
 * message, then one m.reaction per key, each under its own txnId derived from
 * the row id ("sb-<id>", "sb-<id>-k1"...).  If any step fails transiently the
 * whole op is retried, and the steps already done come back as the same
 * events (txnId) or as a duplicate annotation, which counts as done.
 *
 * Pacing comes from the homeserver, not from a constant.  The outbox hands
 * us one op per thread and per reaction at once (caps.order_per_thread), and
 * every PUT goes out at once unless the homeserver said to wait: a 429
 * M_LIMIT_EXCEEDED holds every PUT of ours until its retry time (spec,
 * Rate limiting: Retry-After header, or the deprecated retry_after_ms), then
 * spaces them by a gap that starts at that retry time and shrinks by an
 * eighth on each success, so we settle near the rate the server allows
 * instead of hammering it.  The hold is for the whole account, not only the
 * room of the 429: Synapse keys its message limiter (rc_message) on the
 * sender, so the other rooms are over the limit too.  The 429'd PUT itself
 * goes first when the wait is over, with the same txnId.
 */
#include "adapters/matrix-int.h"
#include "bot/log.h"
#include "bot/store.h"
#include "bot/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Whole event ≤ 65,536 bytes (spec); leave room for the envelope. */
#define MATRIX_MAX_CONTENT	60000
/* PUTs in flight at once, all rooms together. */
#define MATRIX_MAX_INFLIGHT	16
/* A 429'd PUT is retried here this often, then handed back to the outbox. */
#define MATRIX_MAX_LIMITED	20
#define MATRIX_GAP_MAX_MS	30000

struct matrix_out {
	struct matrix		*m;
	struct chat_op		*op;
	char			*event_id;	/* POST: the message, once sent */
	int			 step;		/* 0 message, n: n-th key */
	int			 nkeys;
	int			 limited;	/* 429s of the current PUT */
	char			*put_path;	/* the PUT waiting or in flight */
	json_t			*put_body;
	int			 queued;	/* in m->waitq */
	struct matrix_out	*next;		/* m->outs */
	struct matrix_out	*qnext;		/* m->waitq */
};

static const char *const choice_keys[] = {
	"1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "🔟"
};

const char *
matrix_choice_key(size_t i)
{
	return i < nitems(choice_keys) ? choice_keys[i] : NULL;
}

char *
matrix_choice_line(const char *const *choices)
{
	struct buf	 b = { 0 };
	size_t		 i;

	if (choices == NULL || choices[0] == NULL)
		return NULL;
	for (i = 0; choices[i] != NULL && i < nitems(choice_keys); i++)
		buf_printf(&b, "%s%s %s", i > 0 ? "  " : "", choice_keys[i],
		    choices[i]);
	return buf_steal(&b);
}

static void
matrix_html_escape(struct buf *b, const char *p, size_t n)
{
	for (; n > 0; p++, n--) {
		switch (*p) {
		case '&':
			buf_adds(b, "&amp;");
			break;
		case '<':
			buf_adds(b, "&lt;");
			break;
		case '>':
			buf_adds(b, "&gt;");
			break;
		case '"':
			buf_adds(b, "&quot;");
			break;
		case '\'':
			buf_adds(b, "&#39;");
			break;
		case '\n':
			buf_adds(b, "<br>");
			break;
		default:
			buf_add(b, p, 1);
		}
	}
}

/* End of a span opened by c at p (p after the opener) on this line, or NULL. */
static const char *
matrix_span_end(const char *p, char c)
{
	const char	*e;

	for (e = p; *e != '\0' && *e != '\n'; e++)
		if (*e == c)
			return e > p ? e : NULL;
	return NULL;
}

/*
 * Length of "matrix:@user:server" at p (how the core names a person: adapter
 * prefix and Matrix id), or 0.  Localpart and server as the spec's grammar
 * (Appendices, Identifier grammar): a port is digits after a ':', so the
 * ": " after "answered by matrix:@alice:example.org" is not part of it.
 */
static size_t
matrix_person_len(const char *text, const char *p)
{
	const char	*q, *srv;

	if (strncmp(p, "matrix:@", 8) != 0 || (p > text &&
	    (isalnum((unsigned char)p[-1]) || p[-1] == '_')))
		return 0;
	for (q = p + 8; *q != '\0' && (isalnum((unsigned char)*q) ||
	    strchr("._=-/+", *q) != NULL); q++)
		;
	if (q == p + 8 || *q != ':')
		return 0;
	srv = ++q;
	while (isalnum((unsigned char)*q) || *q == '.' || *q == '-')
		q++;
	/* A trailing dot ends the sentence, not the server name. */
	while (q > srv && (q[-1] == '.' || q[-1] == '-'))
		q--;
	if (q == srv)
		return 0;
	if (*q == ':' && isdigit((unsigned char)q[1]))
		for (q++; isdigit((unsigned char)*q); q++)
			;
	return (size_t)(q - p);
}

/* The display name of user, or its localpart. */
static char *
matrix_person_name(const char *user, matrix_name_fn name_of, void *arg)
{
	const char	*n, *colon;

	if (name_of != NULL && (n = name_of(arg, user)) != NULL && *n != '\0')
		return xstrdup(n);
	colon = strchr(user + 1, ':');
	return xstrndup(user + 1, colon != NULL ? (size_t)(colon - user - 1) :
	    strlen(user + 1));
}

char *
matrix_body(const char *text, matrix_name_fn name_of, void *arg)
{
	struct buf	 b = { 0 };
	const char	*p = text;
	char		*user, *name;
	size_t		 n;

	buf_adds(&b, "");
	while (*p != '\0') {
		if ((n = matrix_person_len(text, p)) > 0) {
			user = xstrndup(p + 7, n - 7);
			name = matrix_person_name(user, name_of, arg);
			buf_adds(&b, name);
			free(name);
			free(user);
			p += n;
		} else
			buf_add(&b, p++, 1);
	}
	return buf_steal(&b);
}

char *
matrix_html(const char *text, matrix_name_fn name_of, void *arg)
{
	struct buf	 b = { 0 };
	const char	*p = text, *e;
	char		*user, *name;
	size_t		 n;

	buf_adds(&b, "");
	while (*p != '\0') {
		if (*p == '`' && (e = matrix_span_end(p + 1, '`')) != NULL) {
			buf_adds(&b, "<code>");
			matrix_html_escape(&b, p + 1, (size_t)(e - p - 1));
			buf_adds(&b, "</code>");
			p = e + 1;
		} else if (*p == '*' && p[1] != ' ' && p[1] != '*' &&
		    (e = matrix_span_end(p + 1, '*')) != NULL && e[-1] != ' ') {
			buf_adds(&b, "<strong>");
			matrix_html_escape(&b, p + 1, (size_t)(e - p - 1));
			buf_adds(&b, "</strong>");
			p = e + 1;
		} else if ((n = matrix_person_len(text, p)) > 0) {
			/* A pill (spec: User and room mentions). */
			user = xstrndup(p + 7, n - 7);
			name = matrix_person_name(user, name_of, arg);
			buf_adds(&b, "<a href=\"https://matrix.to/#/");
			matrix_html_escape(&b, user, strlen(user));
			buf_adds(&b, "\">");
			matrix_html_escape(&b, name, strlen(name));
			buf_adds(&b, "</a>");
			free(name);
			free(user);
			p += n;
		} else {
			matrix_html_escape(&b, p, 1);
			p++;
		}
	}
	return buf_steal(&b);
}

/* ---- building events ----------------------------------------------------- */

static const char *
matrix_name_cb(void *arg, const char *user)
{
	return matrix_name_get(arg, user);
}

/*
 * One message's content: people named by display name (a pill in the HTML),
 * and always an m.mentions, empty unless someone is to be notified: with it
 * present, clients and servers no longer match display names in the body
 * (spec, User and room mentions), so naming a person does not ping them.
 */
static json_t *
matrix_text_content(struct matrix *m, const char *msgtype, const char *text,
    int html, const char *mention)
{
	json_t	*c;
	char	*h, *body;

	body = matrix_body(text, matrix_name_cb, m);
	c = json_pack("{s:s, s:s, s:{}}", "msgtype", msgtype, "body", body,
	    "m.mentions");
	free(body);
	if (mention != NULL)
		json_object_set_new(json_object_get(c, "m.mentions"),
		    "user_ids", json_pack("[s]", mention));
	if (html) {
		h = matrix_html(text, matrix_name_cb, m);
		json_object_set_new(c, "format",
		    json_string("org.matrix.custom.html"));
		json_object_set_new(c, "formatted_body", json_string(h));
		free(h);
	}
	return c;
}

static size_t
matrix_json_size(json_t *j)
{
	char	*s = json_dumps(j, JSON_COMPACT);
	size_t	 n = s != NULL ? strlen(s) : 0;

	free(s);
	return n;
}

/*
 * The text of a POST/EDIT, choices shown as reaction keys unless closed.
 * The core lists a question's choices on a line of its own ("choices: 1)
 * GitHub 2) Google"); the keys replace that line, so they show once.
 */
static char *
matrix_op_text(const struct chat_op *op)
{
	const char	*text = op->text != NULL ? op->text : "", *p, *e;
	char		*line, *t;

	line = op->closed ? NULL : matrix_choice_line(op->choices);
	if (line == NULL)
		return xstrdup(text);
	if ((p = strstr(text, "\nchoices:")) != NULL) {
		e = p + 1 + strcspn(p + 1, "\n");
		t = xasprintf("%.*s\n%s%s", (int)(p - text), text, line, e);
	} else
		t = xasprintf("%s\n\n%s", text, line);
	free(line);
	return t;
}

/*
 * Who a question is for: the person whose message opened the thread, as
 * noted when it came in (matrix-sync.c).  Malloc'd or NULL.
 */
static char *
matrix_asker(const struct chat_op *op)
{
	char	*k, *v;

	if (op->question == NULL || op->closed || op->thread == NULL)
		return NULL;
	k = xasprintf("matrix.starter.%s", op->thread);
	v = store_kv_get(k);
	free(k);
	if (v != NULL && *v != '@') {
		free(v);
		v = NULL;
	}
	return v;
}

/*
 * msgtype: our messages are m.notice, which other bots do not answer and
 * the default push rules do not notify (spec, m.notice; push rule
 * .m.rule.suppress_notices); a question is m.text, because it must reach
 * the person who is waited on.
 */
static json_t *
matrix_build(struct matrix *m, const struct chat_op *op, const char *text,
    int html)
{
	const char	*mt = op->question != NULL ? "m.text" : "m.notice";
	const char	*quote;
	json_t		*c, *nc;
	char		*star, *asker, *t;

	asker = op->kind == CHAT_OP_POST ? matrix_asker(op) : NULL;
	t = asker != NULL ? xasprintf("matrix:%s: %s", asker, text) :
	    xstrdup(text);
	c = matrix_text_content(m, mt, t, html, asker);
	if (op->kind == CHAT_OP_EDIT) {
		/*
		 * The edit keeps the original's thread; m.new_content has none.
		 * Its own m.mentions is empty: nobody is notified twice (spec,
		 * Event replacements: mentions).
		 */
		nc = c;
		star = xasprintf("* %s", t);
		c = matrix_text_content(m, mt, star, html, NULL);
		free(star);
		json_object_set_new(c, "m.new_content", nc);
		json_object_set_new(c, "m.relates_to", json_pack("{s:s, s:s}",
		    "rel_type", "m.replace", "event_id", op->target));
	} else if (op->thread != NULL &&
	    (quote = matrix_quote_for(m, op->channel, op->thread, op->id)) !=
	    NULL) {
		/*
		 * An answer to a message in the thread is a reply to it
		 * inside the thread (spec, Threading: replies within threads,
		 * is_falling_back false), so clients quote what it answers.
		 */
		json_object_set_new(c, "m.relates_to", json_pack(
		    "{s:s, s:s, s:b, s:{s:s}}", "rel_type", "m.thread",
		    "event_id", op->thread, "is_falling_back", 0,
		    "m.in_reply_to", "event_id", quote));
	} else if (op->thread != NULL) {
		json_object_set_new(c, "m.relates_to", json_pack(
		    "{s:s, s:s, s:b, s:{s:s}}", "rel_type", "m.thread",
		    "event_id", op->thread, "is_falling_back", 1,
		    "m.in_reply_to", "event_id",
		    matrix_thread_latest(m, op->channel, op->thread)));
	}
	free(t);
	free(asker);
	return c;
}

/* Content within the event limit: without HTML if need be, then shortened. */
static json_t *
matrix_build_fitting(struct matrix *m, const struct chat_op *op)
{
	json_t	*c;
	char	*text = matrix_op_text(op);
	size_t	 n;

	c = matrix_build(m, op, text, 1);
	while (matrix_json_size(c) > MATRIX_MAX_CONTENT) {
		json_decref(c);
		c = matrix_build(m, op, text, 0);
		if ((n = matrix_json_size(c)) <= MATRIX_MAX_CONTENT)
			break;
		json_decref(c);
		/* Plain text grows by JSON escaping at most 6x; cut and retry. */
		utf8_truncate(text, strlen(text) * 3 / 4);
		c = matrix_build(m, op, text, 0);
		if (matrix_json_size(c) <= MATRIX_MAX_CONTENT) {
			log_warnx("matrix: message of row %llu truncated to fit "
			    "the event size limit", (unsigned long long)op->id);
			break;
		}
	}
	free(text);
	return c;
}

/* ---- sending --------------------------------------------------------------- */

static void	 matrix_out_step(struct matrix_out *);
static void	 matrix_pace_run(struct matrix *);
static void	 matrix_on_sent(struct matrix *, const struct matrix_reply *,
		    void *);

static void
matrix_waitq_remove(struct matrix_out *o)
{
	struct matrix		*m = o->m;
	struct matrix_out	**pp;

	if (!o->queued)
		return;
	for (pp = &m->waitq; *pp != NULL; pp = &(*pp)->qnext)
		if (*pp == o) {
			*pp = o->qnext;
			break;
		}
	if (m->waitq == NULL)
		m->waitq_tail = &m->waitq;
	else if (m->waitq_tail == &o->qnext)
		for (m->waitq_tail = &m->waitq; *m->waitq_tail != NULL;
		    m->waitq_tail = &(*m->waitq_tail)->qnext)
			;
	o->queued = 0;
	o->qnext = NULL;
}

static void
matrix_out_unlink(struct matrix_out *o)
{
	struct matrix_out	**pp;

	matrix_waitq_remove(o);
	for (pp = &o->m->outs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	free(o->event_id);
	free(o->put_path);
	json_decref(o->put_body);
	free(o);
}

static void
matrix_out_done(struct matrix_out *o)
{
	struct chat_op	*op = o->op;
	char		*ref = o->event_id != NULL ? xstrdup(o->event_id) : NULL;

	matrix_out_unlink(o);
	/* One transaction with the outbox's own record of the send. */
	store_begin();
	if (ref != NULL)
		matrix_root_set(ref, op->thread != NULL ? op->thread : ref);
	chat_op_done(op, ref);
	store_commit();
	free(ref);
}

static void
matrix_out_failed(struct matrix_out *o, long long retry_ms, int permanent,
    const char *error)
{
	struct chat_op	*op = o->op;
	char		*e = xstrdup(error != NULL ? error : "?");

	matrix_out_unlink(o);
	chat_op_failed(op, retry_ms, permanent, e);
	free(e);
}

static void
matrix_out_drop(void *arg)
{
	struct matrix_out	*o = arg;

	o->m->send_inflight--;
	matrix_out_failed(o, -1, 0, "matrix adapter shut down");
}

/* ---- pacing ---------------------------------------------------------------- */

static void
matrix_pace_fire(void *arg)
{
	struct matrix	*m = arg;

	m->send_timer = NULL;
	m->busy++;
	matrix_pace_run(m);
	m->busy--;
}

/* 0 if a PUT may leave now, else how long until one may. */
static uint64_t
matrix_pace_wait(struct matrix *m)
{
	uint64_t	 now = now_ms(), at = m->send_not_before;

	if (m->send_gap_ms > 0 && m->send_last_ms + m->send_gap_ms > at)
		at = m->send_last_ms + m->send_gap_ms;
	return at > now ? at - now : 0;
}

static void
matrix_put_now(struct matrix_out *o)
{
	struct matrix	*m = o->m;

	m->send_inflight++;
	m->send_last_ms = now_ms();
	log_debug("matrix: PUT %s", o->put_path);
	matrix_call(m, "PUT", o->put_path, json_incref(o->put_body), 0,
	    matrix_on_sent, matrix_out_drop, o);
}

/* Sends what may go now, oldest first; arms the timer for the rest. */
static void
matrix_pace_run(struct matrix *m)
{
	struct matrix_out	*o;
	uint64_t		 wait = 0;

	while ((o = m->waitq) != NULL && !m->destroyed) {
		if (m->send_inflight >= MATRIX_MAX_INFLIGHT)
			return;		/* a reply runs us again */
		if ((wait = matrix_pace_wait(m)) > 0)
			break;
		matrix_waitq_remove(o);
		matrix_put_now(o);
	}
	if (o != NULL && wait > 0 && m->send_timer == NULL)
		m->send_timer = loop_timer_once(wait, matrix_pace_fire, m);
}

/*
 * Runs the queue on the next loop turn, not now: this may be a reply's
 * callback in the middle of a batch of finished transfers, and a 429 later
 * in the same batch must stop the account before anything else leaves (curl
 * would hand a PUT started now to the very connection the 429 came on).
 */
static void
matrix_pace_soon(struct matrix *m)
{
	if (m->send_timer == NULL && !m->destroyed)
		m->send_timer = loop_timer_once(0, matrix_pace_fire, m);
}

/* The out's PUT queues behind the others (front: a retry) and goes soon. */
static void
matrix_pace(struct matrix_out *o, int front)
{
	struct matrix	*m = o->m;

	if (m->waitq_tail == NULL)
		m->waitq_tail = &m->waitq;
	o->queued = 1;
	if (front) {
		o->qnext = m->waitq;
		m->waitq = o;
		if (m->waitq_tail == &m->waitq)
			m->waitq_tail = &o->qnext;
	} else {
		o->qnext = NULL;
		*m->waitq_tail = o;
		m->waitq_tail = &o->qnext;
	}
	matrix_pace_soon(m);
}

/* A 429: everything waits for retry_ms, then goes at most every gap. */
static void
matrix_pace_limited(struct matrix *m, long long retry_ms)
{
	uint64_t	 until = now_ms() + (uint64_t)retry_ms;

	if (until > m->send_not_before)
		m->send_not_before = until;
	if ((unsigned long long)retry_ms > m->send_gap_ms)
		m->send_gap_ms = retry_ms > MATRIX_GAP_MAX_MS ?
		    MATRIX_GAP_MAX_MS : (unsigned)retry_ms;
	if (m->send_timer != NULL) {
		loop_timer_cancel(m->send_timer);
		m->send_timer = NULL;
	}
}

/* A success: a little faster, back to no gap at all after a while. */
static void
matrix_pace_ok(struct matrix *m)
{
	m->send_gap_ms -= m->send_gap_ms / 8;
	if (m->send_gap_ms < 8)
		m->send_gap_ms = 0;
}

void
matrix_send_free(struct matrix *m)
{
	if (m->send_timer != NULL) {
		loop_timer_cancel(m->send_timer);
		m->send_timer = NULL;
	}
	while (m->waitq != NULL)
		matrix_out_failed(m->waitq, -1, 0, "matrix adapter shut down");
}

static int
matrix_duplicate_annotation(const struct matrix_reply *r)
{
	const char	*e;

	if (r->status != 400)
		return 0;
	if (r->errcode != NULL && strcmp(r->errcode, "M_DUPLICATE_ANNOTATION")
	    == 0)
		return 1;
	/* Older Synapse: 400 M_UNKNOWN "Can't send same reaction twice". */
	e = json_string_value(json_object_get(r->body, "error"));
	return e != NULL && strstr(e, "twice") != NULL;
}

static void
matrix_sent(struct matrix *m, const struct matrix_reply *r, void *arg)
{
	struct matrix_out	*o = arg;
	struct chat_op		*op = o->op;
	const char		*eid;
	int			 reaction;

	m->send_inflight--;
	if (r->status != 429) {
		o->limited = 0;
		if (r->status != 0)
			matrix_pace_ok(m);
	}
	reaction = op->kind == CHAT_OP_REACT || o->step > 0;
	if (r->status == 200) {
		eid = json_string_value(json_object_get(r->body, "event_id"));
		if (o->step == 0 && (op->kind == CHAT_OP_POST ||
		    op->kind == CHAT_OP_UPLOAD)) {
			if (eid == NULL) {
				matrix_out_failed(o, -1, 0,
				    "send: no event_id in the answer");
				return;
			}
			o->event_id = xstrdup(eid);
			if (op->thread != NULL)
				matrix_thread_note(m, op->channel, op->thread,
				    eid);
		}
	} else if (reaction && matrix_duplicate_annotation(r)) {
		log_debug("matrix: reaction of row %llu was there already",
		    (unsigned long long)op->id);
	} else if (r->status == 429) {
		log_info("matrix: rate limited (%s), sending nothing for %lld "
		    "ms", r->errcode != NULL ? r->errcode : "429", r->retry_ms);
		matrix_pace_limited(m, r->retry_ms);
		if (++o->limited >= MATRIX_MAX_LIMITED) {
			/* The outbox keeps it and counts the attempt. */
			matrix_out_failed(o, r->retry_ms, 0, "rate limited");
			return;
		}
		matrix_pace(o, 1);
		return;
	} else if (r->status == 401) {
		matrix_out_failed(o, -1, 0, r->error);
		matrix_auth_lost(m, "send: the access token is no longer valid");
		return;
	} else if (r->status == 0 || r->status >= 500) {
		matrix_out_failed(o, -1, 0, r->error);
		return;
	} else if (o->step > 0) {
		/* A pre-reaction is a convenience; the question stands. */
		log_warnx("matrix: pre-reaction %d of row %llu refused: %s",
		    o->step, (unsigned long long)op->id, r->error);
	} else {
		matrix_out_failed(o, -1, 1, r->error);
		return;
	}
	if (o->step < o->nkeys) {
		o->step++;
		matrix_out_step(o);
		return;
	}
	matrix_out_done(o);
}

/* Every reply frees a slot or ends a wait: whoever waits may go. */
static void
matrix_on_sent(struct matrix *m, const struct matrix_reply *r, void *arg)
{
	matrix_sent(m, r, arg);
	matrix_pace_soon(m);
}

static void
matrix_put(struct matrix_out *o, const char *type, json_t *content)
{
	struct chat_op	*op = o->op;
	char		*room, *txn, *etxn;

	room = matrix_path_escape(op->channel);
	txn = matrix_txn_id(o->m->txn_prefix, op->id, o->step);
	etxn = matrix_path_escape(txn);
	free(o->put_path);
	json_decref(o->put_body);
	o->put_path = xasprintf("/_matrix/client/v3/rooms/%s/send/%s/%s", room,
	    type, etxn);
	o->put_body = content;
	o->limited = 0;
	matrix_pace(o, 0);
	free(etxn);
	free(txn);
	free(room);
}

static json_t *
matrix_reaction(const char *target, const char *key)
{
	return json_pack("{s:{s:s, s:s, s:s}}", "m.relates_to",
	    "rel_type", "m.annotation", "event_id", target, "key", key);
}

static void
matrix_out_step(struct matrix_out *o)
{
	struct chat_op	*op = o->op;

	if (o->step > 0)
		matrix_put(o, "m.reaction", matrix_reaction(o->event_id,
		    choice_keys[o->step - 1]));
	else if (op->kind == CHAT_OP_REACT)
		matrix_put(o, "m.reaction", matrix_reaction(op->target,
		    op->emoji));
	else
		matrix_put(o, "m.room.message", matrix_build_fitting(o->m, op));
}

/* ---- file uploads ---------------------------------------------------------- */

/*
 * A file is two requests (spec, Content repository and m.file):
 * POST /_matrix/media/v3/upload?filename=… with the bytes → content_uri
 * (mxc://…), then an m.room.message of msgtype m.file pointing at it, in
 * the thread, under the row's txnId, so a retried op sends the same event.
 * A retry re-uploads the bytes (media has no idempotency key): at worst an
 * unreferenced copy on the homeserver.
 */
/* The media POST is not one of the paced PUTs (Synapse limits it apart). */
static void
matrix_upload_drop(void *arg)
{
	matrix_out_failed(arg, -1, 0, "matrix adapter shut down");
}

static int
matrix_upload_error(struct matrix_out *o, const struct matrix_reply *r)
{
	if (r->status == 200)
		return 0;
	if (r->status == 429) {
		struct matrix *m = o->m;

		matrix_pace_limited(m, r->retry_ms);
		matrix_out_failed(o, r->retry_ms, 0, "rate limited");
		matrix_pace_run(m);	/* the wait needs its timer again */
	}
	else if (r->status == 401) {
		struct matrix *m = o->m;

		matrix_out_failed(o, -1, 0, r->error);
		matrix_auth_lost(m, "upload: the access token is no longer"
		    " valid");
	} else
		matrix_out_failed(o, -1, r->status == 0 || r->status >= 500 ?
		    0 : 1, r->error);
	return -1;
}

static const char *
matrix_upload_mime(const char *name)
{
	const char	*dot = name != NULL ? strrchr(name, '.') : NULL;

	if (dot != NULL && (strcmp(dot, ".diff") == 0 ||
	    strcmp(dot, ".log") == 0 || strcmp(dot, ".txt") == 0))
		return "text/plain";
	return "application/octet-stream";
}

static void
matrix_upload_stored(struct matrix *m, const struct matrix_reply *r,
    void *arg)
{
	struct matrix_out	*o = arg;
	struct chat_op		*op = o->op;
	const char		*uri, *name;
	json_t			*c;

	if (matrix_upload_error(o, r) != 0)
		return;
	if ((uri = json_string_value(json_object_get(r->body,
	    "content_uri"))) == NULL) {
		matrix_out_failed(o, -1, 0, "upload: no content_uri");
		return;
	}
	name = op->filename != NULL ? op->filename : "file";
	c = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:I}}", "msgtype", "m.file",
	    "body", op->title != NULL ? op->title : name, "filename", name,
	    "url", uri, "info", "mimetype", matrix_upload_mime(name), "size",
	    (json_int_t)op->data_len);
	if (op->thread != NULL)
		json_object_set_new(c, "m.relates_to", json_pack(
		    "{s:s, s:s, s:b, s:{s:s}}", "rel_type", "m.thread",
		    "event_id", op->thread, "is_falling_back", 1,
		    "m.in_reply_to", "event_id",
		    matrix_thread_latest(m, op->channel, op->thread)));
	/* The m.file event is a send like any other: paced, same txnId rule. */
	matrix_put(o, "m.room.message", c);
}

static void
matrix_upload(struct matrix_out *o)
{
	struct chat_op	*op = o->op;
	char		*name, *path;

	name = matrix_path_escape(op->filename != NULL ? op->filename : "file");
	path = xasprintf("/_matrix/media/v3/upload?filename=%s", name);
	matrix_call_raw(o->m, "POST", path, matrix_upload_mime(op->filename),
	    op->data, op->data_len, 120000, matrix_upload_stored,
	    matrix_upload_drop, o);
	free(path);
	free(name);
}

static void
matrix_refuse(void *arg)
{
	chat_op_failed(arg, -1, 1, "matrix: op without room, target or emoji");
}

int
matrix_send(struct adapter *a, struct chat_op *op)
{
	struct matrix		*m = (struct matrix *)a;
	struct matrix_out	*o;
	size_t			 n = 0;

	if (!m->connected || m->destroyed || m->logging_in)
		return -1;
	if (op->channel == NULL || (op->kind != CHAT_OP_POST &&
	    op->kind != CHAT_OP_UPLOAD && op->target == NULL) || (op->kind == CHAT_OP_REACT &&
	    op->emoji == NULL)) {
		log_warnx("matrix: row %llu has no room, target or emoji",
		    (unsigned long long)op->id);
		/* Reported from the loop, never inside send(). */
		loop_defer(matrix_refuse, op);
		return 0;
	}
	o = xcalloc(1, sizeof *o);
	o->m = m;
	o->op = op;
	o->next = m->outs;
	m->outs = o;
	if (op->kind == CHAT_OP_POST && op->choices != NULL)
		while (op->choices[n] != NULL && n < nitems(choice_keys))
			n++;
	o->nkeys = (int)n;
	if (op->kind == CHAT_OP_UPLOAD) {
		matrix_upload(o);
		return 0;
	}
	matrix_out_step(o);
	return 0;
}

static void
matrix_on_notice(struct matrix *m, const struct matrix_reply *r, void *arg)
{
	if (r->status != 200)
		log_warnx("matrix: notice not sent: %s", r->error);
}

void
matrix_send_notice(struct matrix *m, const char *room, const char *txn,
    const char *text)
{
	char	*er, *et, *path;

	er = matrix_path_escape(room);
	et = matrix_path_escape(txn);
	path = xasprintf("/_matrix/client/v3/rooms/%s/send/m.room.message/%s",
	    er, et);
	matrix_call(m, "PUT", path, json_pack("{s:s, s:s}", "msgtype",
	    "m.notice", "body", text), 0, matrix_on_notice, NULL, NULL);
	free(path);
	free(et);
	free(er);
}
