/*
 * agent-table — the agents in memory, by id and in one list: insert,
 * unlink, find (loading an ended one from the store), by token, and the
 * lists `status` shows.
 */
#include "orchestrator/agent-int.h"
#include "orchestrator/conversation.h"
#include "bot/store.h"
#include "bot/util.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Agents in memory by id: the live ones and those that ended less than
 * limits.keep_ended ago (agent-restart.c unloads the rest), so a lookup is
 * O(1) and nothing walks every agent ever run.
 */
static struct agent	**id_table;
static size_t		  id_buckets, id_count;

static size_t
id_slot(int64_t id)
{
	return (size_t)((uint64_t)id * 0x9e3779b97f4a7c15ULL >> 20) &
	    (id_buckets - 1);
}

void
agent_table_insert(struct agent *a)
{
	struct agent	**old = id_table, *b, *next;
	size_t		  n = id_buckets, i;

	if (id_count + 1 > id_buckets * 2 || id_buckets == 0) {
		id_buckets = id_buckets ? id_buckets * 4 : 64;
		id_table = xcalloc(id_buckets, sizeof *id_table);
		for (i = 0; i < n; i++)
			for (b = old[i]; b != NULL; b = next) {
				next = b->hnext;
				b->hnext = id_table[id_slot(b->id)];
				id_table[id_slot(b->id)] = b;
			}
		free(old);
	}
	a->hnext = id_table[id_slot(a->id)];
	id_table[id_slot(a->id)] = a;
	id_count++;
}

void
agent_unlink(struct agent *a)
{
	struct agent	**pp;

	for (pp = &id_table[id_slot(a->id)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == a) {
			*pp = a->hnext;
			id_count--;
			break;
		}
	for (pp = &agent_all; *pp != NULL; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	a->hnext = a->next = NULL;
	if (id_count == 0) {
		free(id_table);
		id_table = NULL;
		id_buckets = 0;
	}
}

struct agent *
agent_find(int64_t id)
{
	struct agent	*a;

	if (id_buckets > 0)
		for (a = id_table[id_slot(id)]; a != NULL; a = a->hnext)
			if (a->id == id)
				return a;
	return agent_load(id);
}

size_t
agent_loaded_count(void)
{
	return id_count;
}

struct agent *
agent_by_token(const char *token)
{
	struct agent	*a;

	if (token == NULL)
		return NULL;
	for (a = agent_all; a != NULL; a = a->next)
		if (agent_is_live(a) && ct_equal(a->token, strlen(a->token),
		    token, strlen(token)))
			return a;
	return NULL;
}

int
agent_list(const struct conversation *c, struct agent **out, int n)
{
	sqlite3_stmt	*st;
	struct agent	*a;
	int64_t		*ids = NULL;
	int		 count = 0, k = 0, i;

	/* From the store: ended agents need not be in memory. */
	st = store_stmt("SELECT id FROM agents WHERE conversation_id = ?"
	    " ORDER BY id");
	store_bind_int(st, 1, c->id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		ids = xrealloc(ids, (size_t)(count + 1) * sizeof *ids);
		ids[count++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	/* The newest n, in id order. */
	for (i = count > n ? count - n : 0; i < count; i++)
		if ((a = agent_find(ids[i])) != NULL)
			out[k++] = a;
	free(ids);
	return k;
}

int
agent_list_all(struct agent **out, int n)
{
	struct agent	*a;
	int		 count = 0;

	for (a = agent_all; a != NULL; a = a->next) {
		if (!agent_is_live(a))
			continue;
		if (count < n)
			out[count] = a;
		count++;
	}
	return count;
}

size_t
agent_live_count(void)
{
	struct agent	*a;
	size_t		 n = 0;

	for (a = agent_all; a != NULL; a = a->next)
		n += agent_is_live(a);
	return n;
}
