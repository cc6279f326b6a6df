/*
 * The man pages against the code: every key of the config schema has its own
 * entry in switchboard.conf(5), every command of the CLI in switchboard(1),
 * nothing documented is gone from the code, and mandoc finds no warning.
 * A key added to config/schema.c without documentation fails here by name.
 */
#include "bot/cli.h"
#include "bot/util.h"
#include "config/schema.h"
#include "tests/unit/t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAN1	"config/man/switchboard.1"
#define MAN5	"config/man/switchboard.conf.5"

static char *
slurp(const char *path)
{
	FILE	*f = fopen(path, "r");
	char	*data;
	long	 n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	data = xmalloc(n + 1);
	data[fread(data, 1, n, f)] = '\0';
	fclose(f);
	return data;
}

/* 1 if a line is exactly ".It MACRO WORD" or starts ".It MACRO WORD ". */
static int
has_item(const char *text, const char *macro, const char *word)
{
	char		*needle;
	const char	*p;
	size_t		 len;
	int		 found = 0;

	needle = xasprintf("\n.It %s %s", macro, word);
	len = strlen(needle);
	for (p = text; (p = strstr(p, needle)) != NULL; p += len) {
		if (p[len] == '\n' || p[len] == ' ' || p[len] == '\0') {
			found = 1;
			break;
		}
	}
	free(needle);
	return found;
}

TEST(every_schema_key_has_an_entry_in_switchboard_conf_5)
{
	char		*man = slurp(MAN5);
	struct buf	 missing = { 0 };
	size_t		 i;

	CHECK(man != NULL);

	for (i = 0; i < schema_nkeys; i++) {
		if (!has_item(man, "Ic", schema_keys[i].path))
			buf_printf(&missing, "%s%s", missing.len ? " " : "",
			    schema_keys[i].path);
	}
	free(man);
	/* The FAIL line names them: add ".It Ic KEY" to MAN5. */
	CHECK_STR(missing.data ? missing.data : "", "");
	buf_free(&missing);
}

TEST(switchboard_conf_5_documents_no_key_the_schema_lacks)
{
	char		*man = slurp(MAN5), *keys, *end, *line, *nl, *word;
	struct buf	 stale = { 0 };

	CHECK(man != NULL);

	/* Only the KEYS section: its items are keys. */
	keys = strstr(man, "\n.Sh KEYS\n");
	CHECK(keys != NULL);
	end = strstr(keys + 1, "\n.Sh ");
	CHECK(end != NULL);
	*end = '\0';
	for (line = keys + 1; line != NULL && *line != '\0'; line = nl) {
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl++ = '\0';
		if (strncmp(line, ".It Ic ", 7) != 0)
			continue;
		word = line + 7;
		word[strcspn(word, " ")] = '\0';
		if (schema_lookup(word) == NULL)
			buf_printf(&stale, "%s%s", stale.len ? " " : "", word);
	}
	free(man);
	CHECK_STR(stale.data ? stale.data : "", "");
	buf_free(&stale);
}

TEST(every_cli_command_has_an_entry_in_switchboard_1)
{
	char		*man = slurp(MAN1);
	const char	*name;
	struct buf	 missing = { 0 };
	size_t		 i;

	CHECK(man != NULL);

	for (i = 0; (name = cli_command_name(i)) != NULL; i++) {
		if (!has_item(man, "Cm", name))
			buf_printf(&missing, "%s%s", missing.len ? " " : "",
			    name);
	}
	free(man);
	CHECK(i >= 8);	/* the table was read at all */
	CHECK_STR(missing.data ? missing.data : "", "");
	buf_free(&missing);
}

/* mandoc's exit status and output at -W warning; output NULL-safe. */
static int
lint(const char *path, char **out)
{
	char	*cmd;
	FILE	*p;
	int	 st;
	char	 buf[4096];
	size_t	 n;

	cmd = xasprintf("mandoc -T lint -W warning '%s' 2>&1", path);
	p = popen(cmd, "r");
	free(cmd);
	if (p == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, p);
	buf[n] = '\0';
	*out = xstrdup(buf);
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(mandoc_lint_finds_no_warning_in_either_page)
{
	static const char bad[] = ".Dd December 2, 2026\n.Dt X 1\n.Os\n"
	    ".Sh NAME\n.Nm x\n.Nd y\n.Sh DESCRIPTION\n.Bl -tag -width Ds\n"
	    ".It a\nb\n";
	char	*out = NULL, tmpl[] = "/tmp/sb-man-XXXXXX";
	int	 fd;

	if (system("command -v mandoc >/dev/null 2>&1") != 0) {
		printf("  mandoc is not installed (it is in DEB_PKGS: make deps)\n");
		CHECK(!"mandoc installed");
	}
	CHECK_INT(lint(MAN1, &out), 0);
	CHECK_STR(out, "");
	free(out);
	CHECK_INT(lint(MAN5, &out), 0);
	CHECK_STR(out, "");
	free(out);
	/* The check itself can fail: an unclosed list is a warning or worse. */
	CHECK((fd = mkstemp(tmpl)) != -1);
	CHECK(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad));
	close(fd);
	CHECK(lint(tmpl, &out) != 0);
	unlink(tmpl);
	CHECK(strstr(out, "Bl") != NULL);
	free(out);
}

int
main(void)
{
	RUN(every_schema_key_has_an_entry_in_switchboard_conf_5);
	RUN(switchboard_conf_5_documents_no_key_the_schema_lacks);
	RUN(every_cli_command_has_an_entry_in_switchboard_1);
	RUN(mandoc_lint_finds_no_warning_in_either_page);
	return t_done();
}
