/*
 * serve — the daemon: assembles config, log, store, HTTP server, control and
 * agent sockets, adapters and the orchestrator on the loop, and takes them
 * down in the reverse order on SIGINT/SIGTERM (stop intake, flush the
 * outbox for a bounded time, close sockets) or on `quit` from the console.
 *
 * Start-up is all-or-nothing: a bad config, an unusable state dir, a port in
 * use or a second daemon on the same state dir is one clear line on stderr
 * and exit 1, with nothing left half-started.
 */
#ifndef SB_SERVE_H
#define SB_SERVE_H

int	 serve_main(const char *config_path);

/* Socket paths under a state dir (malloc'd). */
char	*serve_ctl_path(const char *state_dir);
char	*serve_agent_path(const char *state_dir);

#endif
