#include "bot/version.h"

#ifndef SB_VERSION
#define SB_VERSION	"unknown"	/* built without the Makefile */
#endif

const char	sb_version[] = SB_VERSION;
