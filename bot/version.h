/*
 * version — the version string of this build, for `switchboard version` and
 * /healthz.  The Makefile passes it to bot/version.c only (from `git describe`
 * or the VERSION file), so a new commit recompiles one file, not the tree.
 */
#ifndef SB_VERSION_H
#define SB_VERSION_H

extern const char	sb_version[];

#endif
