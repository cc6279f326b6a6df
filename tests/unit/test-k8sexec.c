/*
 * test-k8sexec — the exec stream's messages (orchestrator/k8s-exec.c) as
 * the API server frames them (channel byte first; v5.channel.k8s.io), and
 * the exit code read from the status channel's metav1.Status.
 */
#include "tests/unit/t.h"
#include "orchestrator/k8s.h"

#include <stdlib.h>

static int
frame(const char *p, size_t n, const char **data, size_t *len)
{
	const unsigned char	*d = NULL;
	int			 ch;

	ch = k8s_exec_frame((const unsigned char *)p, n, &d, len);
	*data = (const char *)d;
	return ch;
}

TEST(stdout_and_stderr_are_split_by_channel)
{
	const char	*d;
	size_t		 n;

	CHECK(frame("\x01hello\n", 7, &d, &n) == 1);
	CHECK(n == 6 && memcmp(d, "hello\n", 6) == 0);
	CHECK(frame("\x02oops", 5, &d, &n) == 2);
	CHECK(n == 4 && memcmp(d, "oops", 4) == 0);
	/* Binary output passes as it is, NUL bytes too. */
	CHECK(frame("\x01\x00\xff", 3, &d, &n) == 1);
	CHECK(n == 2 && d[0] == '\0' && (unsigned char)d[1] == 0xff);
}

TEST(empty_and_foreign_messages_carry_nothing)
{
	const char	*d;
	size_t		 n;

	CHECK(frame("", 0, &d, &n) == -1);
	/* v1's hello: one empty message per channel. */
	CHECK(frame("\x01", 1, &d, &n) == -1);
	CHECK(frame("\x03", 1, &d, &n) == -1);
	/* stdin and resize are the client's; 255 (v5 close) too. */
	CHECK(frame("\x00x", 2, &d, &n) == -1);
	CHECK(frame("\x04{}", 3, &d, &n) == -1);
	CHECK(frame("\xff\x00", 2, &d, &n) == -1);
}

TEST(status_channel_success_is_exit_0)
{
	const char	*d;
	size_t		 n;
	const char	 m[] = "\x03{\"metadata\":{},\"status\":\"Success\"}";
	char		*why;

	CHECK(frame(m, sizeof m - 1, &d, &n) == 3);
	CHECK(k8s_exec_status(d, n, &why) == 0);
	CHECK(why == NULL);
}

TEST(status_channel_exit_code_from_causes)
{
	const char	*s = "{\"metadata\":{},\"status\":\"Failure\",\"message\":"
	    "\"command terminated with non-zero exit code: error executing "
	    "command [sh -c x], exit code 3\",\"reason\":\"NonZeroExitCode\","
	    "\"details\":{\"causes\":[{\"reason\":\"ExitCode\",\"message\":"
	    "\"3\"}]}}";
	char		*why;

	CHECK(k8s_exec_status(s, strlen(s), &why) == 3);
	CHECK(why == NULL);
	s = "{\"status\":\"Failure\",\"details\":{\"causes\":[{\"reason\":"
	    "\"Other\",\"message\":\"9\"},{\"reason\":\"ExitCode\",\"message\":"
	    "\"137\"}]}}";
	CHECK(k8s_exec_status(s, strlen(s), &why) == 137);
}

TEST(status_channel_failure_without_exit_code_says_why)
{
	const char	*s = "{\"status\":\"Failure\",\"message\":\"container "
	    "not found (\\\"agent\\\")\",\"reason\":\"InternalError\"}";
	char		*why;

	CHECK(k8s_exec_status(s, strlen(s), &why) == -1);
	CHECK_STR(why, "container not found (\"agent\")");
	free(why);
	/* An exit code that is not one is no exit code. */
	s = "{\"status\":\"Failure\",\"details\":{\"causes\":[{\"reason\":"
	    "\"ExitCode\",\"message\":\"3x\"}]}}";
	CHECK(k8s_exec_status(s, strlen(s), &why) == -1);
	CHECK_STR(why, "the exec failed");
	free(why);
	CHECK(k8s_exec_status("nope", 4, &why) == -1);
	CHECK(why != NULL);
	free(why);
}

int
main(void)
{
	RUN(stdout_and_stderr_are_split_by_channel);
	RUN(empty_and_foreign_messages_carry_nothing);
	RUN(status_channel_success_is_exit_0);
	RUN(status_channel_exit_code_from_causes);
	RUN(status_channel_failure_without_exit_code_says_why);
	return t_done();
}
