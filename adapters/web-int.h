/*
 * web-int — what web.c (adapter, message log), web-http.c (HTTP, WebSocket,
 * sign-in) and web-api.c (dashboard, agent view, diffs) share.  Not for the
 * rest of the program.
 */
#ifndef SB_WEB_INT_H
#define SB_WEB_INT_H

#include "adapters/adapter.h"

#include <jansson.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <stdint.h>

struct config;

#define WEB_CHANNEL	"web"		/* threads opened elsewhere */
#define WEB_SELF	"switchboard"
#define WEB_KV_NEXT	"web.next_id"
#define WEB_TOKEN_FILE	"web-token"
#define WEB_COOKIE	"sb_web"
#define WEB_MAX_MSGS	20000		/* retained message states */
#define WEB_MAX_TEXT	65536
#define WEB_BATCH	(256 * 1024)	/* bytes of replay per frame */
#define WEB_HASH	4096
#define WEB_CARD_LOG	200		/* step lines kept per card */

struct web_msg {
	uint64_t	 id;
	uint64_t	 seq;		/* of its last change */
	json_t		*obj;		/* the state pages get */
	char		*json;		/* obj at seq, serialised once for all */
	size_t		 json_len;
	json_t		*log;		/* card: every "• step" line seen */
	char		*channel;	/* of its thread */
	struct web_msg	*prev, *next;	/* by seq, oldest first */
	struct web_msg	*hnext;
};

struct web_frame {
	char		*data;
	struct web_frame *next;
};

struct web_conn {
	struct web		*w;
	struct httpd_ws		*ws;
	uint64_t		 id;		/* for replies that come later */
	uint64_t		 cursor;	/* page has every change <= this */
	int			 hello;
	struct web_frame	*out, **out_tail;
	struct web_conn		*next;
};

struct web {
	struct adapter		 hdr;		/* first: the core casts */
	const struct config	*cfg;
	char			*token;
	char			 cookie[2 * SHA256_DIGEST_LENGTH + 1];
	char			 epoch[17];
	uint64_t		 next_id;
	uint64_t		 seq;
	uint64_t		 lost_seq;	/* last change evicted */
	struct web_msg		*head, *tail;
	struct web_msg		*hash[WEB_HASH];
	size_t			 nmsgs;
	struct web_conn		*conns;
	uint64_t		 next_conn;
	int			 started;
	int			 stopping;
	int			 destroyed;
	unsigned		 pending;	/* deferred reports, diff jobs */
};


/* A static file compiled in (build/.../web-assets.c, from adapters/web/). */
struct web_asset {
	const char		*path;		/* "/app.js" */
	const char		*type;		/* "text/javascript; charset=utf-8" */
	const unsigned char	*data;
	size_t			 len;
};
extern const struct web_asset	web_assets[];	/* ends with path NULL */

struct httpd_request;
struct httpd_response;

/* web.c: the message log. */
struct web_msg	*web_msg_lookup(struct web *, const char *id);
struct web_msg	*web_msg_new(struct web *, uint64_t thread, const char *channel,
		    const char *author, const char *text, const char *reply_to);
/* A message changed: its new state goes to every page that is live. */
void		 web_changed(struct web *, struct web_msg *);
void		 web_react(struct web_msg *, const char *emoji, const char *who);
void		 web_conn_push_json(struct web_conn *, json_t *);
/* Frees a destroyed adapter once nothing deferred refers to it. */
void		 web_settle(struct web *);

/* web-http.c: the way in. */
char		*web_token_load(const char *state_dir, char **cause);
void		 web_cookie_make(struct web *);
void		 web_page(const struct httpd_request *, struct httpd_response *,
		    void *);
void		 web_static(const struct httpd_request *,
		    struct httpd_response *, void *);
void		 web_conn_free(struct web_conn *);
extern const struct httpd_ws_handler web_ws_handler;

/* The steps a web card has shown, oldest first, or NULL (borrowed). */
json_t	*web_card_log(struct web *, const char *msg_id);
const char *web_card_text(struct web *, const char *msg_id);

/* Every agent the store knows, newest first (at most max). */
json_t	*web_api_agents(const struct config *, int max);
/* One agent in detail, or NULL if there is no such agent. */
json_t	*web_api_agent(struct web *, const struct config *, int64_t id);

/*
 * The agent's patch against its base, computed on the threadpool; done
 * runs on the loop with the JSON reply (taken).  Ends with done always.
 */
void	 web_api_diff(const struct config *, int64_t id,
	    void (*done)(json_t *, void *), void *arg);

#endif
