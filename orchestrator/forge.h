/*
 * forge — pull requests on GitHub (or GitHub Enterprise through api_url):
 * `pr #N` pushes the agent's branch, then POST /repos/{owner}/{repo}/pulls
 * with a title from the task and a body from the summary, the diff stat,
 * a link back to the thread where the platform has permalinks (Matrix) and
 * "Closes #N" for work a GitHub issue started.  The PR's URL is recorded
 * (kv "forge:pr:<agent>"), posted in the thread and shown on the card; a
 * second `pr #N` reports it, and so does GitHub's 422 "A pull request
 * already exists" (then the open PR is looked up by head).
 */
#ifndef SB_FORGE_H
#define SB_FORGE_H

struct agent;

void	 forge_pr(struct agent *);
/* The recorded PR URL of an agent (malloc'd), or NULL. */
char	*forge_pr_url(long long agent_id);
void	 forge_shutdown(void);

#endif
