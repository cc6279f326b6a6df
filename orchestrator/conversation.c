#include "orchestrator/conversation.h"
#include "orchestrator/outbox.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CONV_BUCKETS	1024

static struct conversation	*conv_hash[CONV_BUCKETS];	/* by thread */
static struct conversation	*conv_ids[CONV_BUCKETS];	/* by id */
static int64_t			 conv_loaded;

/*
 * Unreferenced conversations, least recently used first: the ones that
 * leave memory when more than conv_keep are cached.
 */
static struct conversation	*idle_head, *idle_tail;
static int64_t			 conv_idle;
static int64_t			 conv_keep = 1000;
static int			 trim_scheduled;

static unsigned
conv_hashval(const char *adapter, const char *channel, const char *thread)
{
	const char	*parts[3] = { adapter, channel, thread };
	unsigned	 h = 2166136261u;
	const char	*p;
	int		 i;

	for (i = 0; i < 3; i++) {
		for (p = parts[i]; *p != '\0'; p++)
			h = (h ^ (unsigned char)*p) * 16777619u;
		h = (h ^ 0xff) * 16777619u;
	}
	return h % CONV_BUCKETS;
}

static unsigned
conv_idval(int64_t id)
{
	return (unsigned)((uint64_t)id * 0x9e3779b97f4a7c15ULL >> 32) %
	    CONV_BUCKETS;
}

static void
conv_free(struct conversation *c)
{
	free(c->adapter); free(c->channel); free(c->thread);
	free(c->starter); free(c->repo); free(c->agent);
	free(c);
}

/* ---- the idle list --------------------------------------------------------- */

static void
idle_remove(struct conversation *c)
{
	if (c->lprev != NULL)
		c->lprev->lnext = c->lnext;
	else
		idle_head = c->lnext;
	if (c->lnext != NULL)
		c->lnext->lprev = c->lprev;
	else
		idle_tail = c->lprev;
	c->lprev = c->lnext = NULL;
	conv_idle--;
}

static void	trim(void *);

static void
idle_append(struct conversation *c)
{
	c->lnext = NULL;
	c->lprev = idle_tail;
	if (idle_tail != NULL)
		idle_tail->lnext = c;
	else
		idle_head = c;
	idle_tail = c;
	conv_idle++;
	/*
	 * Never now: the caller up the stack may be using the pointers it
	 * just looked up.  Nothing holds an unreferenced one across a turn.
	 */
	if (conv_idle > conv_keep && !trim_scheduled) {
		trim_scheduled = 1;
		loop_defer(trim, NULL);
	}
}

/* A lookup made it the most recently used. */
static void
conv_touch(struct conversation *c)
{
	if (c->refs == 0 && c != idle_tail) {
		idle_remove(c);
		idle_append(c);
	}
}

/* ---- the hashes -------------------------------------------------------------- */

static struct conversation *
conv_cached(const char *adapter, const char *channel, const char *thread)
{
	struct conversation	*c;

	for (c = conv_hash[conv_hashval(adapter, channel, thread)]; c != NULL;
	    c = c->hnext)
		if (strcmp(c->thread, thread) == 0 &&
		    strcmp(c->channel, channel) == 0 &&
		    strcmp(c->adapter, adapter) == 0)
			return c;
	return NULL;
}

static struct conversation *
conv_cached_id(int64_t id)
{
	struct conversation	*c;

	for (c = conv_ids[conv_idval(id)]; c != NULL; c = c->inext)
		if (c->id == id)
			return c;
	return NULL;
}

static void
thread_insert(struct conversation *c)
{
	unsigned	 h = conv_hashval(c->adapter, c->channel, c->thread);

	c->hnext = conv_hash[h];
	conv_hash[h] = c;
}

static void
thread_remove(struct conversation *c)
{
	struct conversation	**pp;

	pp = &conv_hash[conv_hashval(c->adapter, c->channel, c->thread)];
	for (; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			return;
		}
}

/* Cached, unreferenced until someone holds it. */
static void
conv_insert(struct conversation *c)
{
	unsigned	 h = conv_idval(c->id);

	thread_insert(c);
	c->inext = conv_ids[h];
	conv_ids[h] = c;
	conv_loaded++;
	idle_append(c);
}

/* Out of the cache: the hashes, the idle list and the count. */
static void
conv_unlink(struct conversation *c)
{
	struct conversation	**pp;

	if (c->refs == 0)
		idle_remove(c);
	thread_remove(c);
	for (pp = &conv_ids[conv_idval(c->id)]; *pp != NULL;
	    pp = &(*pp)->inext)
		if (*pp == c) {
			*pp = c->inext;
			break;
		}
	conv_loaded--;
}

/* Out of memory: the row is the truth, a lookup loads it again. */
static void
conv_evict(struct conversation *c)
{
	conv_unlink(c);
	conv_free(c);
}

static void
trim(void *arg)
{
	trim_scheduled = 0;
	while (conv_idle > conv_keep && idle_head != NULL) {
		log_debug("conversation %lld: left memory (idle)",
		    (long long)idle_head->id);
		conv_evict(idle_head);
	}
}

void
conversation_hold(struct conversation *c)
{
	if (c->refs++ == 0 && !c->orphan)
		idle_remove(c);
}

void
conversation_release(struct conversation *c)
{
	if (--c->refs > 0)
		return;
	if (c->orphan)		/* the cache is gone: the last holder frees */
		conv_free(c);
	else
		idle_append(c);
}

void
conversation_set_keep(int keep)
{
	conv_keep = keep < 0 ? 0 : keep;
	if (conv_idle > conv_keep && !trim_scheduled) {
		trim_scheduled = 1;
		loop_defer(trim, NULL);
	}
}

static struct conversation *
conv_from_row(sqlite3_stmt *st)
{
	struct conversation	*c;

	c = xcalloc(1, sizeof *c);
	c->id = sqlite3_column_int64(st, 0);
	c->adapter = store_col_text(st, 1);
	c->channel = store_col_text(st, 2);
	c->thread = store_col_text(st, 3);
	c->starter = store_col_text(st, 4);
	c->repo = store_col_text(st, 5);
	c->agent = store_col_text(st, 6);
	c->refused = sqlite3_column_int(st, 7);
	return c;
}

/*
 * A row just read: cached from now on, unless the same conversation is
 * (one struct per conversation, so a held one is the one everybody sees).
 */
static struct conversation *
conv_adopt(struct conversation *c)
{
	struct conversation	*cached;

	if ((cached = conv_cached_id(c->id)) == NULL) {
		conv_insert(c);
		return c;
	}
	conv_free(c);
	conv_touch(cached);
	return cached;
}

#define CONV_COLS "id, adapter, channel, thread, starter, repo, agent, refused"

/*
 * thread may be the platform id of a root we posted (conversation_open): the
 * conversation is then still filed under the root's key.  Re-file it under
 * the platform id, so the next lookup is a plain one.  The struct stays the
 * same object (agents hold it), only its thread string changes.
 */
static struct conversation *
conv_learn_root(const char *adapter, const char *channel, const char *thread)
{
	struct conversation	*c;
	sqlite3_stmt		*st;
	char			*key;

	if ((key = outbox_key_of(adapter, channel, thread)) == NULL)
		return NULL;
	if ((c = conv_cached(adapter, channel, key)) == NULL) {
		st = store_stmt("SELECT " CONV_COLS " FROM conversations WHERE"
		    " adapter = ? AND channel = ? AND thread = ?");
		store_bind_text(st, 1, adapter);
		store_bind_text(st, 2, channel);
		store_bind_text(st, 3, key);
		if (sqlite3_step(st) == SQLITE_ROW)
			c = conv_adopt(conv_from_row(st));
		sqlite3_reset(st);
	}
	free(key);
	if (c == NULL)
		return NULL;
	st = store_stmt("UPDATE conversations SET thread = ? WHERE id = ?");
	store_bind_text(st, 1, thread);
	store_bind_int(st, 2, c->id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		/* Still usable: the next lookup tries again. */
		log_warnx("conversation %lld: recording thread %s failed: %s",
		    (long long)c->id, thread, sqlite3_errmsg(store_db()));
		sqlite3_reset(st);
		return c;
	}
	sqlite3_reset(st);
	thread_remove(c);
	free(c->thread);
	c->thread = xstrdup(thread);
	thread_insert(c);
	log_debug("conversation %lld: root is %s", (long long)c->id, thread);
	return c;
}

struct conversation *
conversation_find(const char *adapter, const char *channel, const char *thread)
{
	struct conversation	*c;
	sqlite3_stmt		*st;

	if ((c = conv_cached(adapter, channel, thread)) != NULL) {
		conv_touch(c);
		return c;
	}
	st = store_stmt("SELECT " CONV_COLS " FROM conversations WHERE"
	    " adapter = ? AND channel = ? AND thread = ?");
	store_bind_text(st, 1, adapter);
	store_bind_text(st, 2, channel);
	store_bind_text(st, 3, thread);
	if (sqlite3_step(st) == SQLITE_ROW)
		c = conv_adopt(conv_from_row(st));
	sqlite3_reset(st);
	if (c == NULL)
		c = conv_learn_root(adapter, channel, thread);
	return c;
}

struct conversation *
conversation_by_id(int64_t id)
{
	struct conversation	*c = NULL;
	sqlite3_stmt		*st;

	if ((c = conv_cached_id(id)) != NULL) {
		conv_touch(c);
		return c;
	}
	st = store_stmt("SELECT " CONV_COLS " FROM conversations WHERE id = ?");
	store_bind_int(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		c = conv_from_row(st);
	sqlite3_reset(st);
	return c != NULL ? conv_adopt(c) : NULL;
}

/*
 * Its row was not committed: out of the cache, so the replayed event makes
 * it again (with the id the store then gives).  Agents made in the same
 * transaction, the only holders of the pointer, were undone before it
 * (store hooks roll back newest first), but are freed a loop turn later:
 * their release frees it then.
 */
static void
conv_undo(void *arg)
{
	struct conversation	*c = arg;

	log_warnx("conversation %lld: not recorded (the store did not"
	    " commit); dropped", (long long)c->id);
	conv_unlink(c);
	if (c->refs > 0)	/* an undone agent, freed on the next loop turn */
		c->orphan = 1;	/* its release frees */
	else
		conv_free(c);
}

struct conversation *
conversation_create(const char *adapter, const char *channel,
    const char *thread, const char *starter, const char *repo,
    const char *agent, int refused)
{
	struct conversation	*c;
	sqlite3_stmt		*st;

	st = store_stmt("INSERT INTO conversations (adapter, channel, thread,"
	    " starter, repo, agent, refused, created_at) VALUES"
	    " (?, ?, ?, ?, ?, ?, ?, ?)");
	store_bind_text(st, 1, adapter);
	store_bind_text(st, 2, channel);
	store_bind_text(st, 3, thread);
	store_bind_text(st, 4, starter);
	store_bind_text(st, 5, repo);
	store_bind_text(st, 6, agent);
	store_bind_int(st, 7, refused);
	store_bind_int(st, 8, wall_s());
	if (sqlite3_step(st) != SQLITE_DONE) {
		log_warnx("conversation: insert failed: %s",
		    sqlite3_errmsg(store_db()));
		sqlite3_reset(st);
		return NULL;
	}
	sqlite3_reset(st);
	c = xcalloc(1, sizeof *c);
	c->id = sqlite3_last_insert_rowid(store_db());
	c->adapter = xstrdup(adapter);
	c->channel = xstrdup(channel);
	c->thread = xstrdup(thread);
	c->starter = starter != NULL ? xstrdup(starter) : NULL;
	c->repo = repo != NULL ? xstrdup(repo) : NULL;
	c->agent = agent != NULL ? xstrdup(agent) : NULL;
	c->refused = refused;
	conv_insert(c);
	store_hook(NULL, conv_undo, c);
	log_info("conversation %lld: %s/%s/%s started by %s", (long long)c->id,
	    adapter, channel, thread, starter != NULL ? starter : "?");
	return c;
}

struct conversation *
conversation_open(const char *adapter, const char *channel, const char *text,
    const char *starter, const char *repo, const char *agent)
{
	struct conversation	*c;
	sqlite3_stmt		*st;
	int64_t			 id;
	char			*key;

	if (store_begin() != 0)
		return NULL;
	/* The key needs the id: insert under a placeholder, then rename. */
	st = store_stmt("INSERT INTO conversations (adapter, channel, thread,"
	    " starter, repo, agent, refused, created_at) VALUES"
	    " (?, ?, '', ?, ?, ?, 0, ?)");
	store_bind_text(st, 1, adapter);
	store_bind_text(st, 2, channel);
	store_bind_text(st, 3, starter);
	store_bind_text(st, 4, repo);
	store_bind_text(st, 5, agent);
	store_bind_int(st, 6, wall_s());
	if (sqlite3_step(st) != SQLITE_DONE) {
		log_warnx("conversation: insert failed: %s",
		    sqlite3_errmsg(store_db()));
		sqlite3_reset(st);
		store_rollback();
		return NULL;
	}
	sqlite3_reset(st);
	id = sqlite3_last_insert_rowid(store_db());
	key = xasprintf("c%lld.root", (long long)id);
	st = store_stmt("UPDATE conversations SET thread = ? WHERE id = ?");
	store_bind_text(st, 1, key);
	store_bind_int(st, 2, id);
	if (sqlite3_step(st) != SQLITE_DONE ||
	    outbox_post(adapter, channel, NULL, NULL, key, text, NULL,
	    NULL) == 0) {
		log_warnx("conversation: opening a thread failed: %s",
		    sqlite3_errmsg(store_db()));
		sqlite3_reset(st);
		store_rollback();
		free(key);
		return NULL;
	}
	sqlite3_reset(st);
	if (store_commit() != 0) {
		free(key);
		return NULL;
	}
	c = xcalloc(1, sizeof *c);
	c->id = id;
	c->adapter = xstrdup(adapter);
	c->channel = xstrdup(channel);
	c->thread = key;
	c->starter = starter != NULL ? xstrdup(starter) : NULL;
	c->repo = repo != NULL ? xstrdup(repo) : NULL;
	c->agent = agent != NULL ? xstrdup(agent) : NULL;
	conv_insert(c);
	store_hook(NULL, conv_undo, c);
	log_info("conversation %lld: new thread in %s/%s opened for %s",
	    (long long)id, adapter, channel, starter != NULL ? starter : "?");
	return c;
}

void
conversation_say(struct conversation *c, const char *fmt, ...)
{
	va_list	 ap;
	char	*text;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	outbox_post(c->adapter, c->channel, c->thread, NULL, NULL, text,
	    NULL, NULL);
	free(text);
}

int64_t
conversation_count(void)
{
	return conv_loaded;
}

/*
 * At exit.  Held ones stay: their holders (agents freed on a later loop
 * turn) release them, and the last release frees.
 */
void
conversation_free_all(void)
{
	struct conversation	*c, *next;
	size_t			 i;

	for (i = 0; i < CONV_BUCKETS; i++) {
		for (c = conv_hash[i]; c != NULL; c = next) {
			next = c->hnext;
			if (c->refs == 0)
				conv_free(c);
			else
				c->orphan = 1;
		}
		conv_hash[i] = conv_ids[i] = NULL;
	}
	idle_head = idle_tail = NULL;
	conv_idle = conv_loaded = 0;
}
