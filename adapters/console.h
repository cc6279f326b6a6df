/*
 * console — a chat on the terminal: one line in on stdin, one line out on
 * stdout.  The offline default and the workhorse of end-to-end tests, so its
 * line format is a fixed contract that scripts parse.
 *
 * In (one command per line; empty lines are ignored, anything else that does
 * not parse gets a "! " line back, never silence; lines over 64 KiB too):
 *	new TEXT			start a thread, as user "me"
 *	t<N> TEXT			reply in thread N
 *	reply <msg-id> TEXT		reply to one message (sets reply_to)
 *	click <question-id> <choice>	press a choice button (choice = rest)
 *	react <msg-id> <emoji>		react to a message
 *	as <user> <command>		any of the above as another user
 *	quit				loop_shutdown("quit")
 * Out:
 *	[t<N>] <msg-id> <author>: TEXT	a message (users are "console:<user>",
 *					the bot is "switchboard"); following
 *					lines of TEXT indented by 4 spaces
 *	    [choices q5: GitHub | Google]	a question's buttons
 *	[t<N>] ~<msg-id> TEXT		an edit
 *	[t<N>] +<emoji> <msg-id>	a reaction
 * Every message a user types is echoed in the first format with the id the
 * console gave it, so people and scripts can react or reply to it.
 *
 * Decision: a thread's id is its root message's id.  Message ids are decimal
 * numbers from one counter shared by all threads, so "new" that gets id 7
 * opens thread "7" (printed [t7]), and the core can hand "7" back as the
 * thread of later posts.  The counter lives in the store's kv table under
 * "console.next_id" so ids never repeat across restarts.  The map from a
 * message to its thread is kept in memory only, for the ids handed out by this
 * process; edits and reactions fall back to the thread the core passes.
 *
 * stdin/stdout are served on the loop by their kind: a tty or a pipe as a
 * libuv stream, a regular file (stdin redirected from a file) by uv_fs_read in
 * chunks and by plain write() for output.  The console works on duplicates of
 * fds 0 and 1, so stopping never closes the process's own stdio, and it puts
 * back the file status flags a pipe shares with other processes (libuv makes
 * it non-blocking).
 */
#ifndef SB_CONSOLE_H
#define SB_CONSOLE_H

#include "adapters/adapter.h"

extern const struct adapter_ops console_ops;

#endif
