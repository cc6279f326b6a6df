/*
 * merge — the merge queue: `merge #N` lands an agent's branch on its repo's
 * base, one merge at a time per repository, in request order.
 *
 * Each merge: (1) merge the branch onto the base's current tip in memory
 * with libgit2 — conflicts are listed in the thread and `resolve #N` hands
 * them to the agent as a follow-up; (2) if the repo has a check, run it in
 * a scratch worktree of the merged commit, with a timeout, and post the
 * tail of its output when it fails; (3) move the base branch to the merged
 * commit by compare-and-swap (nothing moves if anyone else moved it; then
 * the merge starts over), bring a checked-out base's files along, and push
 * the base when merge_push is set.
 *
 * Every step is a row in the merges table before it starts.  Only step 3
 * changes anything a person sees in git, and it is one atomic ref update,
 * so a crash (kill -9 included) at any point leaves the base either where
 * it was or fully merged.  On start, merges that were merging or checking
 * start over (the thread is told), and one that was landing finishes.
 */
#ifndef SB_MERGE_H
#define SB_MERGE_H

struct agent;

void	 merge_enqueue(struct agent *, const char *by);
void	 merge_resolve(struct agent *, const char *by);
/* After a start: resume or report merges a previous run left. */
void	 merge_recover(void);
void	 merge_shutdown(void);

#endif
