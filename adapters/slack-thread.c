/*
 * slack-thread — does a thread exist?  A message's thread_ts can point at no
 * message at all (another app posted with a made-up thread_ts: Slack takes
 * it, and the reply lives in a thread nobody can open), and work started
 * there would answer into that invisible thread.  The core asks before it
 * starts a conversation in a thread it has never seen; conversations.replies
 * with ts = the thread and limit 1 answers, thread_not_found meaning there
 * is none.  The question is asked from the work path, never from the ack
 * path, and answers are kept in a small ring, so a thread costs one call.
 */
#include "adapters/slack.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

#define THREAD_CACHE	256
#define THREAD_TRIES	3	/* 429s waited out before we assume it exists */
#define THREAD_WAIT_MS	30000	/* the longest Retry-After we wait */

struct slack_thread {
	char		*channel, *thread;
	int		 verdict;	/* 1, 0, or -1 while asking */
	unsigned	 tries;
};

struct slack_threads {
	struct slack_thread	 ring[THREAD_CACHE];
	size_t			 next;	/* the slot to reuse next */
};

/* A call in flight names its entry by value: the ring may reuse the slot. */
struct thread_ask {
	struct slack	*s;
	char		*channel, *thread;
};

static void	ask(struct slack *, const char *, const char *);

static struct slack_thread *
find(struct slack *s, const char *channel, const char *thread)
{
	struct slack_thread	*t;
	size_t			 i;

	if (s->threads == NULL)
		return NULL;
	for (i = 0; i < THREAD_CACHE; i++) {
		t = &s->threads->ring[i];
		if (t->thread != NULL && strcmp(t->thread, thread) == 0 &&
		    strcmp(t->channel, channel) == 0)
			return t;
	}
	return NULL;
}

static void
settle(struct slack *s, const char *channel, const char *thread, int verdict)
{
	struct slack_thread	*t;

	if ((t = find(s, channel, thread)) != NULL)
		t->verdict = verdict;
	if (s->stopping || s->destroyed)
		return;
	chat_thread_checked(&s->hdr, channel, thread);
}

static void
ask_again(void *arg)
{
	struct thread_ask	*q = arg;
	struct slack		*s = q->s;

	s->pending--;
	if (!s->stopping && !s->destroyed)
		ask(s, q->channel, q->thread);
	free(q->channel);
	free(q->thread);
	free(q);
	slack_settle(s);
}

static void
ask_done(struct slack *s, long status, json_t *reply, long long retry_ms,
    const char *error, void *arg)
{
	struct thread_ask	*q = arg;
	struct slack_thread	*t;
	json_t			*msgs, *m;
	const char		*e;
	size_t			 i;
	int			 verdict = 1;

	e = reply != NULL && !json_is_true(json_object_get(reply, "ok")) ?
	    json_string_value(json_object_get(reply, "error")) : NULL;
	if (error != NULL && strcmp(error, "adapter destroyed") == 0)
		goto out;
	if (status == 429 && (t = find(s, q->channel, q->thread)) != NULL &&
	    ++t->tries < THREAD_TRIES && !s->stopping) {
		/* Asked again after Retry-After; the event stays parked. */
		s->pending++;
		loop_timer_once((uint64_t)(retry_ms > 0 && retry_ms <
		    THREAD_WAIT_MS ? retry_ms : 1000), ask_again, q);
		return;
	}
	if (error == NULL && status == 200 && e != NULL &&
	    strcmp(e, "thread_not_found") == 0)
		verdict = 0;
	else if (error == NULL && status == 200 && e == NULL) {
		/* ok, but is the thread's root among what came back? */
		msgs = json_object_get(reply, "messages");
		verdict = 0;
		json_array_foreach(msgs, i, m)
			if (json_string_value(json_object_get(m, "ts")) != NULL &&
			    strcmp(json_string_value(json_object_get(m, "ts")),
			    q->thread) == 0)
				verdict = 1;
	} else
		/* Cannot tell (no scope, down, limited): work as before. */
		log_warnx("slack: cannot check thread %s in %s (%s); taking it"
		    " as it is", q->thread, q->channel, error != NULL ? error :
		    e != NULL ? e : "no answer");
	if (verdict == 0)
		log_warnx("slack: thread %s in %s does not exist (%s)",
		    q->thread, q->channel, e != NULL ? e : "no root message");
	settle(s, q->channel, q->thread, verdict);
out:
	free(q->channel);
	free(q->thread);
	free(q);
}

static void
ask(struct slack *s, const char *channel, const char *thread)
{
	struct thread_ask	*q;

	q = xcalloc(1, sizeof *q);
	q->s = s;
	q->channel = xstrdup(channel);
	q->thread = xstrdup(thread);
	slack_api(s, "conversations.replies", 0, json_pack("{s:s, s:s, s:i}",
	    "channel", channel, "ts", thread, "limit", 1), ask_done, q);
}

int
slack_thread_exists(struct adapter *a, const char *channel, const char *thread)
{
	struct slack		*s = (struct slack *)a;
	struct slack_thread	*t;

	if ((t = find(s, channel, thread)) != NULL)
		return t->verdict;
	if (s->threads == NULL)
		s->threads = xcalloc(1, sizeof *s->threads);
	t = &s->threads->ring[s->threads->next];
	s->threads->next = (s->threads->next + 1) % THREAD_CACHE;
	free(t->channel);
	free(t->thread);
	t->channel = xstrdup(channel);
	t->thread = xstrdup(thread);
	t->verdict = -1;
	t->tries = 0;
	ask(s, channel, thread);
	return -1;
}

void
slack_threads_free(struct slack *s)
{
	size_t	 i;

	if (s->threads == NULL)
		return;
	for (i = 0; i < THREAD_CACHE; i++) {
		free(s->threads->ring[i].channel);
		free(s->threads->ring[i].thread);
	}
	free(s->threads);
	s->threads = NULL;
}
