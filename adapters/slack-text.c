/*
 * slack-text — Slack's text in both directions: escaping for mrkdwn, the
 * inbound markup (<@U…>, <#C…|name>, <url|label>, &lt;), Block Kit for
 * questions, splitting to Slack's limits, emoji names, form bodies.
 *
 * Limits are counted in characters (UTF-8 code points), as Slack counts
 * them, never in bytes: a split never cuts a code point or an &entity;.
 */
#include "adapters/slack.h"
#include "bot/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- escaping ------------------------------------------------------------ */

char *
slack_text_escape(const char *s)
{
	struct buf	 b = { 0 };

	/* Slack asks for exactly these three; everything else is literal. */
	buf_adds(&b, "");
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			buf_adds(&b, "&amp;");
			break;
		case '<':
			buf_adds(&b, "&lt;");
			break;
		case '>':
			buf_adds(&b, "&gt;");
			break;
		default:
			buf_add(&b, s, 1);
			break;
		}
	}
	return buf_steal(&b);
}

/* Appends s[0..n) with &lt; &gt; &amp; decoded. */
static void
add_unescaped(struct buf *b, const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (s[i] == '&') {
			if (n - i >= 4 && strncmp(s + i, "&lt;", 4) == 0) {
				buf_adds(b, "<");
				i += 3;
				continue;
			}
			if (n - i >= 4 && strncmp(s + i, "&gt;", 4) == 0) {
				buf_adds(b, ">");
				i += 3;
				continue;
			}
			if (n - i >= 5 && strncmp(s + i, "&amp;", 5) == 0) {
				buf_adds(b, "&");
				i += 4;
				continue;
			}
		}
		buf_add(b, s + i, 1);
	}
}

/* One <…> span (without the brackets) as plain text. */
static void
add_markup(struct buf *b, const char *s, size_t n, const char *bot_user)
{
	const char	*bar = memchr(s, '|', n);
	size_t		 idlen = bar != NULL ? (size_t)(bar - s) : n;
	const char	*label = bar != NULL ? bar + 1 : NULL;
	size_t		 llen = bar != NULL ? n - idlen - 1 : 0;
	const char	*caret;

	if (n > 0 && s[0] == '@') {
		if (bot_user != NULL && idlen - 1 == strlen(bot_user) &&
		    strncmp(s + 1, bot_user, idlen - 1) == 0)
			return;		/* the mention that addressed us */
		buf_adds(b, "@");
		if (label != NULL && llen > 0)
			add_unescaped(b, label, llen);
		else
			add_unescaped(b, s + 1, idlen - 1);
		return;
	}
	if (n > 0 && s[0] == '#') {
		buf_adds(b, "#");
		if (label != NULL && llen > 0)
			add_unescaped(b, label, llen);
		else
			add_unescaped(b, s + 1, idlen - 1);
		return;
	}
	if (n > 0 && s[0] == '!') {
		/* <!here>, <!subteam^S1|@team>, <!date^…|fallback> */
		if (label != NULL && llen > 0) {
			add_unescaped(b, label, llen);
			return;
		}
		caret = memchr(s, '^', idlen);
		buf_adds(b, "@");
		add_unescaped(b, s + 1, (caret != NULL ? (size_t)(caret - s) :
		    idlen) - 1);
		return;
	}
	if (label != NULL && llen > 0) {
		add_unescaped(b, label, llen);
		buf_adds(b, " (");
		add_unescaped(b, s, idlen);
		buf_adds(b, ")");
		return;
	}
	add_unescaped(b, s, idlen);
}

char *
slack_text_decode(const char *s, const char *bot_user)
{
	struct buf	 b = { 0 };
	const char	*lt, *gt;

	buf_adds(&b, "");
	while (*s != '\0') {
		/* A literal '<' arrives as &lt;, so a raw one opens markup. */
		if ((lt = strchr(s, '<')) == NULL) {
			add_unescaped(&b, s, strlen(s));
			break;
		}
		add_unescaped(&b, s, (size_t)(lt - s));
		if ((gt = strchr(lt + 1, '>')) == NULL) {
			add_unescaped(&b, lt, strlen(lt));
			break;
		}
		add_markup(&b, lt + 1, (size_t)(gt - lt - 1), bot_user);
		s = gt + 1;
	}
	return buf_steal(&b);
}

int
slack_text_mentions(const char *text, const char *user)
{
	const char	*p = text;
	size_t		 n;

	if (text == NULL || user == NULL || *user == '\0')
		return 0;
	n = strlen(user);
	while ((p = strstr(p, "<@")) != NULL) {
		p += 2;
		if (strncmp(p, user, n) == 0 && (p[n] == '>' || p[n] == '|'))
			return 1;
	}
	return 0;
}

/* ---- sizes --------------------------------------------------------------- */

static int
is_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

size_t
slack_text_chars(const char *s)
{
	size_t	 n = 0;

	for (; *s != '\0'; s++)
		if (!is_cont((unsigned char)*s))
			n++;
	return n;
}

/* Byte offset just past max characters of s (or its end). */
static size_t
char_offset(const char *s, size_t max)
{
	size_t	 i = 0, n = 0;

	while (s[i] != '\0') {
		if (!is_cont((unsigned char)s[i])) {
			if (n == max)
				break;
			n++;
		}
		i++;
	}
	return i;
}

char *
slack_text_clip(const char *s, size_t max)
{
	char	*r;
	size_t	 off;

	if (slack_text_chars(s) <= max)
		return xstrdup(s);
	off = char_offset(s, max > 0 ? max - 1 : 0);
	r = xmalloc(off + sizeof "…");
	memcpy(r, s, off);
	memcpy(r + off, "…", sizeof "…");
	return r;
}

size_t
slack_text_split(const char *s, size_t max, char ***out)
{
	char		**v = NULL;
	size_t		  n = 0, off, cut, i, len;

	if (max < 16)
		max = 16;
	for (;;) {
		len = strlen(s);
		off = char_offset(s, max);
		cut = off;
		if (off < len) {
			/* A newline, else a space, in the last quarter. */
			for (i = off; i > off - off / 4; i--)
				if (s[i - 1] == '\n')
					break;
			if (i > off - off / 4)
				cut = i;
			else {
				for (i = off; i > off - off / 4; i--)
					if (s[i - 1] == ' ')
						break;
				if (i > off - off / 4)
					cut = i;
			}
			/* Never inside an entity: &amp; is 5 bytes at most. */
			for (i = cut; i > 0 && i + 6 > cut; i--) {
				if (s[i - 1] == ';')
					break;
				if (s[i - 1] == '&') {
					if (i - 1 > 0)
						cut = i - 1;
					break;
				}
			}
		}
		v = xrealloc(v, (n + 1) * sizeof *v);
		v[n++] = xstrndup(s, cut);
		s += cut;
		if (*s == '\0')
			break;
	}
	*out = v;
	return n;
}

void
slack_text_free_pieces(char **v, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- Block Kit ----------------------------------------------------------- */

json_t *
slack_blocks_question(const char *mrkdwn, const char *question,
    const char *const *choices, int closed)
{
	json_t		*blocks = json_array(), *elems = NULL;
	char		**pieces, *label, *value, id[300];
	size_t		  n, i, nchoices = 0, nactions;

	if (choices != NULL && !closed && question != NULL)
		while (choices[nchoices] != NULL)
			nchoices++;
	nactions = (nchoices + SLACK_MAX_BUTTONS - 1) / SLACK_MAX_BUTTONS;
	if (nactions > 2) {
		/* More than 50 choices make no sense as buttons. */
		nactions = 2;
		nchoices = 2 * SLACK_MAX_BUTTONS;
	}

	n = slack_text_split(mrkdwn, SLACK_MAX_SECTION, &pieces);
	for (i = 0; i < n; i++) {
		if (pieces[i][0] == '\0')
			continue;
		if (json_array_size(blocks) + nactions >= SLACK_MAX_BLOCKS)
			break;	/* the full text is in the message's text */
		json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:s}}",
		    "type", "section", "text", "type", "mrkdwn", "text",
		    pieces[i]));
	}
	slack_text_free_pieces(pieces, n);

	for (i = 0; i < nchoices; i++) {
		if (i % SLACK_MAX_BUTTONS == 0) {
			elems = json_array();
			snprintf(id, sizeof id, "sbq:%.200s:%zu", question,
			    i / SLACK_MAX_BUTTONS);
			json_array_append_new(blocks, json_pack("{s:s, s:s, s:o}",
			    "type", "actions", "block_id", id,
			    "elements", elems));
		}
		label = slack_text_clip(choices[i], SLACK_MAX_BUTTON);
		value = xstrdup(choices[i]);
		utf8_truncate(value, SLACK_MAX_VALUE);
		snprintf(id, sizeof id, "sbq:%.200s:%zu", question, i);
		json_array_append_new(elems, json_pack(
		    "{s:s, s:{s:s, s:s, s:b}, s:s, s:s}", "type", "button",
		    "text", "type", "plain_text", "text", label, "emoji", 1,
		    "action_id", id, "value", value));
		free(label);
		free(value);
	}
	return blocks;
}

int
slack_action_parse(const char *action_id, char **question)
{
	const char	*p, *colon;

	*question = NULL;
	if (action_id == NULL || strncmp(action_id, "sbq:", 4) != 0)
		return -1;
	p = action_id + 4;
	if ((colon = strrchr(p, ':')) == NULL || colon == p ||
	    parse_uint(colon + 1) < 0)
		return -1;
	*question = xstrndup(p, (size_t)(colon - p));
	return 0;
}

/* ---- emoji --------------------------------------------------------------- */

static const struct {
	const char	*emoji;
	const char	*name;
} emoji_names[] = {
	{ "👀", "eyes" },
	{ "1️⃣", "one" }, { "2️⃣", "two" }, { "3️⃣", "three" },
	{ "4️⃣", "four" }, { "5️⃣", "five" }, { "6️⃣", "six" },
	{ "7️⃣", "seven" }, { "8️⃣", "eight" }, { "9️⃣", "nine" },
	{ "🔟", "keycap_ten" },
	{ "✅", "white_check_mark" },
	{ "❓", "question" },
	{ "❌", "x" },
	{ "✖️", "heavy_multiplication_x" }, { "✖", "heavy_multiplication_x" },
	{ "⚠️", "warning" }, { "⚠", "warning" },
	{ "👍", "+1" },
	{ "👎", "-1" },
	{ "🚀", "rocket" },
	{ "🎉", "tada" },
	{ "⏳", "hourglass_flowing_sand" },
};

const char *
slack_emoji_name(const char *emoji)
{
	size_t	 i;

	if (emoji == NULL)
		return NULL;
	for (i = 0; i < nitems(emoji_names); i++)
		if (strcmp(emoji, emoji_names[i].emoji) == 0)
			return emoji_names[i].name;
	return NULL;
}

/* ---- forms --------------------------------------------------------------- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes s[0..n) (+ and %XX); NULL on a bad escape, and on %00, which
 * would silently cut the JSON inside.
 */
static char *
form_decode(const char *s, size_t n)
{
	struct buf	 b = { 0 };
	size_t		 i;
	int		 hi, lo;
	char		 c;

	buf_adds(&b, "");
	for (i = 0; i < n; i++) {
		c = s[i];
		if (c == '+')
			c = ' ';
		else if (c == '%') {
			if (n - i < 3 || (hi = hexval(s[i + 1])) < 0 ||
			    (lo = hexval(s[i + 2])) < 0) {
				buf_free(&b);
				return NULL;
			}
			if ((c = (char)(hi * 16 + lo)) == '\0') {
				buf_free(&b);
				return NULL;
			}
			i += 2;
		}
		buf_add(&b, &c, 1);
	}
	return buf_steal(&b);
}

char *
slack_form_value(const char *body, size_t len, const char *name)
{
	const char	*p = body, *end = body + len, *amp, *eq;
	char		*key;
	int		 match;

	while (p < end) {
		amp = memchr(p, '&', (size_t)(end - p));
		if (amp == NULL)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq != NULL) {
			key = form_decode(p, (size_t)(eq - p));
			match = key != NULL && strcmp(key, name) == 0;
			free(key);
			if (match)
				return form_decode(eq + 1,
				    (size_t)(amp - eq - 1));
		}
		p = amp + 1;
	}
	return NULL;
}
