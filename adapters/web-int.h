/*
 * web-int — what web.c (adapter, message log, WebSocket) and web-api.c
 * (dashboard, agent view, diffs) share.  Not for the rest of the program.
 */
#ifndef SB_WEB_INT_H
#define SB_WEB_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct web;
struct config;

/* A static file compiled in (build/.../web-assets.c, from adapters/web/). */
struct web_asset {
	const char		*path;		/* "/app.js" */
	const char		*type;		/* "text/javascript; charset=utf-8" */
	const unsigned char	*data;
	size_t			 len;
};
extern const struct web_asset	web_assets[];	/* ends with path NULL */

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
