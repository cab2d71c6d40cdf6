/*
 * The manual pages stay true to the code, after git's t0450:
 *  - every `sigtrig <command> -h` usage line (and every subcommand's, for
 *    commands whose usage takes a <subcommand>) appears, verbatim, as a
 *    line of the SYNOPSIS of man/sigtrig-<command>.1;
 *  - `sigtrigd --help` likewise in sigtrigd(8);
 *  - every key of src/config_keys.def appears in sigtrig.conf(5) as a
 *    "key = default" line;
 *  - every command of cmd/commands.def is listed in sigtrig(1);
 *  - every page of man/Makefile.inc formats without a warning.
 *
 * A page line is compared after the roff is taken off it: a leading font
 * macro (.B, .BR, .I, ...) is replaced by its arguments, font escapes
 * (\fB \fI \fR \fP) are removed, and \- \  \& \e \(aq \(dq become the
 * characters they print.
 *
 * The source tree is $SIGTRIG_SOURCE_DIR and the built programs are in
 * $SIGTRIG_BUILD_DIR (tests/Makefile.inc sets both); "." and ".." are
 * tried when they are not set.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_NAMES 128

static char source_dir[PATH_MAX];
static char build_dir[PATH_MAX];

/* The commands of cmd/commands.def, in order; read once by main(). */
static char *commands[MAX_NAMES];
static size_t command_count;
/* The pages of man/Makefile.inc, as paths relative to the source tree. */
static char *pages[MAX_NAMES];
static size_t page_count;

/* ---- Small helpers ---------------------------------------------------- */

/* A growable string. */
struct text {
	char *data;
	size_t length, capacity;
};

static void text_append(struct text *text, const char *bytes, size_t length)
{
	if (text->length + length + 1 > text->capacity) {
		size_t capacity = text->capacity == 0 ? 256 : text->capacity;
		while (capacity < text->length + length + 1)
			capacity *= 2;
		text->data = realloc(text->data, capacity);
		if (text->data == NULL)
			abort();
		text->capacity = capacity;
	}
	memcpy(text->data + text->length, bytes, length);
	text->length += length;
	text->data[text->length] = '\0';
}

static void text_printf(struct text *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *text, const char *fmt, ...)
{
	char buffer[4096];
	va_list args;
	va_start(args, fmt);
	int length = vsnprintf(buffer, sizeof buffer, fmt, args);
	va_end(args);
	if (length > 0)
		text_append(text, buffer, (size_t)length < sizeof buffer ? (size_t)length : sizeof buffer - 1);
}

static const char *text_string(const struct text *text)
{
	return text->data != NULL ? text->data : "";
}

/* The whole file, NUL-terminated (malloc'd), or NULL when it cannot be read. */
static char *read_file(const char *path)
{
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return NULL;
	struct text text = { 0 };
	char buffer[8192];
	size_t got;
	while ((got = fread(buffer, 1, sizeof buffer, file)) > 0)
		text_append(&text, buffer, got);
	fclose(file);
	if (text.data == NULL)
		text_append(&text, "", 0);
	return text.data;
}

static char *source_path(const char *relative)
{
	static char path[PATH_MAX + 256];
	snprintf(path, sizeof path, "%s/%s", source_dir, relative);
	return path;
}

static char *read_source_file(const char *relative)
{
	char *content = read_file(source_path(relative));
	ck_assert_msg(content != NULL, "cannot read %s: %s", source_path(relative), strerror(errno));
	return content;
}

/* First of `candidates` (NULLs skipped) that holds `marker`. */
static void find_directory(char *out, size_t size, const char *const *candidates, size_t count,
			   const char *marker)
{
	for (size_t i = 0; i < count; i++) {
		if (candidates[i] == NULL || *candidates[i] == '\0')
			continue;
		char path[PATH_MAX + 256];
		snprintf(path, sizeof path, "%s/%s", candidates[i], marker);
		if (access(path, F_OK) == 0) {
			snprintf(out, size, "%s", candidates[i]);
			return;
		}
	}
	snprintf(out, size, "%s", ".");
}

/*
 * Runs argv (argv[0] a path, or a name searched in PATH) with standard
 * input from /dev/null; returns its exit status (-1 when it did not exit)
 * with its standard output and error in *out and *err (malloc'd).
 */
static int run_program(const char *const *argv, char **out, char **err)
{
	int out_pipe[2], err_pipe[2];
	ck_assert_int_eq(pipe(out_pipe), 0);
	ck_assert_int_eq(pipe(err_pipe), 0);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, STDIN_FILENO);
		dup2(out_pipe[1], STDOUT_FILENO);
		dup2(err_pipe[1], STDERR_FILENO);
		close(out_pipe[0]);
		close(err_pipe[0]);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(out_pipe[1]);
	close(err_pipe[1]);
	struct text texts[2] = { { 0 }, { 0 } };
	struct pollfd fds[2] = { { .fd = out_pipe[0], .events = POLLIN },
				 { .fd = err_pipe[0], .events = POLLIN } };
	int open_count = 2;
	while (open_count > 0) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || fds[i].revents == 0)
				continue;
			char buffer[4096];
			ssize_t got = read(fds[i].fd, buffer, sizeof buffer);
			if (got > 0) {
				text_append(&texts[i], buffer, (size_t)got);
			} else if (got == 0 || errno != EINTR) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_count--;
			}
		}
	}
	int status = 0;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
	}
	for (int i = 0; i < 2; i++)
		if (texts[i].data == NULL)
			text_append(&texts[i], "", 0);
	*out = texts[0].data;
	*err = texts[1].data;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool program_in_path(const char *name)
{
	const char *path = getenv("PATH");
	if (path == NULL)
		return false;
	char *copy = strdup(path);
	char *save = NULL;
	bool found = false;
	for (char *dir = strtok_r(copy, ":", &save); dir != NULL && !found; dir = strtok_r(NULL, ":", &save)) {
		char candidate[PATH_MAX + 64];
		snprintf(candidate, sizeof candidate, "%s/%s", *dir != '\0' ? dir : ".", name);
		found = access(candidate, X_OK) == 0;
	}
	free(copy);
	return found;
}

/* The first line of `output` after "usage: " (malloc'd), or NULL when it does not start so. */
static char *usage_line(const char *output)
{
	if (strncmp(output, "usage: ", 7) != 0)
		return NULL;
	const char *line = output + 7;
	return strndup(line, strcspn(line, "\n"));
}

/* ---- Taking the roff off a page line ------------------------------------ */

static bool is_font_macro(const char *name, bool *alternating)
{
	static const char *const joined[] = { "B", "I", "SM", "SB" };
	static const char *const alternate[] = { "BR", "RB", "BI", "IB", "IR", "RI" };
	for (size_t i = 0; i < sizeof joined / sizeof joined[0]; i++)
		if (strcmp(name, joined[i]) == 0) {
			*alternating = false;
			return true;
		}
	for (size_t i = 0; i < sizeof alternate / sizeof alternate[0]; i++)
		if (strcmp(name, alternate[i]) == 0) {
			*alternating = true;
			return true;
		}
	return false;
}

/* A macro's arguments, as roff splits them: by blanks, "quoted" ones whole. */
static void join_macro_arguments(const char *arguments, bool alternating, struct text *out)
{
	const char *c = arguments;
	bool first = true;
	for (;;) {
		while (*c == ' ' || *c == '\t')
			c++;
		if (*c == '\0')
			break;
		if (!first && !alternating)
			text_append(out, " ", 1);
		first = false;
		if (*c == '"') {
			c++;
			while (*c != '\0' && *c != '"') {
				if (c[0] == '\\' && c[1] != '\0') {
					text_append(out, c, 2);
					c += 2;
				} else {
					text_append(out, c++, 1);
				}
			}
			if (*c == '"')
				c++;
		} else {
			while (*c != '\0' && *c != ' ' && *c != '\t') {
				if (c[0] == '\\' && c[1] != '\0') {
					text_append(out, c, 2);
					c += 2;
				} else {
					text_append(out, c++, 1);
				}
			}
		}
	}
}

/* Replaces the escapes a page's text uses by what they print, in place. */
static void unescape(char *line)
{
	static const struct {
		const char *escape, *printed;
	} table[] = {
		{ "\\-", "-" }, { "\\ ", " " }, { "\\~", " " }, { "\\&", "" }, { "\\e", "\\" },
		{ "\\(aq", "'" }, { "\\(dq", "\"" }, { "\\(lq", "\"" }, { "\\(rq", "\"" }, { "\\(en", "-" },
		{ "\\fB", "" }, { "\\fI", "" }, { "\\fR", "" }, { "\\fP", "" }, { "\\f(CW", "" },
		{ "\\f[]", "" }, { "\\f[B]", "" }, { "\\f[I]", "" }, { "\\f[R]", "" }, { "\\f[CW]", "" },
	};
	char *out = line;
	const char *in = line;
	while (*in != '\0') {
		bool replaced = false;
		if (*in == '\\') {
			for (size_t i = 0; i < sizeof table / sizeof table[0] && !replaced; i++) {
				size_t length = strlen(table[i].escape);
				if (strncmp(in, table[i].escape, length) == 0) {
					size_t printed = strlen(table[i].printed);
					memmove(out, table[i].printed, printed);
					out += printed;
					in += length;
					replaced = true;
				}
			}
		}
		if (!replaced)
			*out++ = *in++;
	}
	*out = '\0';
	while (out > line && (out[-1] == ' ' || out[-1] == '\t'))
		*--out = '\0';
}

/*
 * One line of a page as the text it prints (malloc'd), or NULL for a
 * request that prints no text (.nf, .in, .PP, a comment, ...).
 */
static char *page_line_text(const char *line)
{
	struct text text = { 0 };
	if (line[0] == '.' || line[0] == '\'') {
		const char *name = line + 1;
		while (*name == ' ' || *name == '\t')
			name++;
		size_t name_length = strcspn(name, " \t");
		char macro[8] = "";
		if (name_length < sizeof macro)
			memcpy(macro, name, name_length);
		bool alternating;
		if (name_length >= sizeof macro || !is_font_macro(macro, &alternating))
			return NULL;
		join_macro_arguments(name + name_length, alternating, &text);
	} else {
		text_append(&text, line, strlen(line));
	}
	if (text.data == NULL)
		text_append(&text, "", 0);
	unescape(text.data);
	return text.data;
}

/* The printed text of each line of a page, or of one section of it (NULL: all). */
struct page_lines {
	char **lines;   /* NULL entries: lines that print no text */
	char **sources; /* the raw lines */
	size_t count;
	bool found;     /* the section was there */
};

static void page_lines_read(struct page_lines *result, const char *content, const char *section)
{
	memset(result, 0, sizeof *result);
	bool inside = section == NULL;
	result->found = section == NULL;
	const char *line = content;
	while (*line != '\0') {
		size_t length = strcspn(line, "\n");
		char *raw = strndup(line, length);
		line += length + (line[length] == '\n');
		if (section != NULL && strncmp(raw, ".SH", 3) == 0) {
			const char *name = raw + 3 + strspn(raw + 3, " \t\"");
			inside = strncmp(name, section, strlen(section)) == 0 &&
				 strchr(" \t\"", name[strlen(section)]) != NULL;
			result->found = result->found || inside;
			free(raw);
			continue;
		}
		if (!inside) {
			free(raw);
			continue;
		}
		result->lines = realloc(result->lines, (result->count + 1) * sizeof *result->lines);
		result->sources = realloc(result->sources, (result->count + 1) * sizeof *result->sources);
		result->lines[result->count] = page_line_text(raw);
		result->sources[result->count] = raw;
		result->count++;
	}
}

static void page_lines_free(struct page_lines *lines)
{
	for (size_t i = 0; i < lines->count; i++) {
		free(lines->lines[i]);
		free(lines->sources[i]);
	}
	free(lines->lines);
	free(lines->sources);
	memset(lines, 0, sizeof *lines);
}

static bool page_lines_contain(const struct page_lines *lines, const char *wanted)
{
	for (size_t i = 0; i < lines->count; i++)
		if (lines->lines[i] != NULL && strcmp(lines->lines[i], wanted) == 0)
			return true;
	return false;
}

/* Every text line of the page (or section), one per line, to show in a failure. */
static void page_lines_describe(const struct page_lines *lines, struct text *out)
{
	for (size_t i = 0; i < lines->count; i++)
		if (lines->lines[i] != NULL && *lines->lines[i] != '\0')
			text_printf(out, "\n    %s", lines->lines[i]);
}

/* ---- Reading the declarations ------------------------------------------- */

/* Names of `COMMAND(name, ...)` lines; the comment's example is indented, so it is skipped. */
static void read_commands(void)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/cmd/commands.def", source_dir);
	char *content = read_file(path);
	if (content == NULL)
		return;
	for (const char *line = content; line != NULL && *line != '\0';) {
		if (strncmp(line, "COMMAND(", 8) == 0 && command_count < MAX_NAMES) {
			const char *name = line + 8 + strspn(line + 8, " \t");
			commands[command_count++] = strndup(name, strcspn(name, " \t,)"));
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	free(content);
}

/* Every man/<page>.<section> named in man/Makefile.inc. */
static void read_pages(void)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/man/Makefile.inc", source_dir);
	char *content = read_file(path);
	if (content == NULL)
		return;
	for (const char *c = content; (c = strstr(c, "man/")) != NULL;) {
		size_t length = strcspn(c, " \t\n\\");
		bool is_page = length > 6 && c[length - 2] == '.' && c[length - 1] >= '1' && c[length - 1] <= '8';
		if (is_page && page_count < MAX_NAMES)
			pages[page_count++] = strndup(c, length);
		c += length;
	}
	free(content);
}

/* The next C string literal at or after *cursor (malloc'd, escapes kept), or NULL. */
static char *next_string_literal(const char **cursor)
{
	const char *quote = strchr(*cursor, '"');
	if (quote == NULL)
		return NULL;
	const char *end = quote + 1;
	while (*end != '\0' && *end != '"')
		end += end[0] == '\\' && end[1] != '\0' ? 2 : 1;
	*cursor = *end == '"' ? end + 1 : end;
	return strndup(quote + 1, (size_t)(end - quote - 1));
}

/* ---- The checks ----------------------------------------------------------- */

/* The usage line of `sigtrig ARGS... -h`, which must exit 0 (malloc'd). */
static char *sigtrig_usage(const char *command, const char *subcommand, char **full_output)
{
	char program[PATH_MAX + 16];
	snprintf(program, sizeof program, "%s/sigtrig", build_dir);
	const char *argv[] = { program, command, subcommand != NULL ? subcommand : "-h",
			       subcommand != NULL ? "-h" : NULL, NULL };
	char *out, *err;
	int status = run_program(argv, &out, &err);
	ck_assert_msg(status == 0, "sigtrig %s%s%s -h exited %d: %s", command, subcommand ? " " : "",
		      subcommand ? subcommand : "", status, err);
	char *usage = usage_line(out);
	ck_assert_msg(usage != NULL, "sigtrig %s%s%s -h printed no usage line: %s", command,
		      subcommand ? " " : "", subcommand ? subcommand : "", out);
	free(err);
	if (full_output != NULL)
		*full_output = out;
	else
		free(out);
	return usage;
}

/* The subcommands `sigtrig COMMAND -h` lists under "subcommands:". */
static size_t listed_subcommands(const char *output, char **names, size_t max)
{
	const char *list = strstr(output, "\nsubcommands:\n");
	size_t count = 0;
	if (list == NULL)
		return 0;
	list += strlen("\nsubcommands:\n");
	while (*list == ' ' && count < max) {
		const char *name = list + strspn(list, " ");
		names[count++] = strndup(name, strcspn(name, " \n"));
		list = strchr(list, '\n');
		if (list == NULL)
			break;
		list++;
	}
	return count;
}

static void expect_in_synopsis(const char *page_path, const struct page_lines *synopsis, const char *usage)
{
	if (page_lines_contain(synopsis, usage))
		return;
	struct text have = { 0 };
	page_lines_describe(synopsis, &have);
	ck_abort_msg("%s: the SYNOPSIS has no line\n    %s\n(what -h prints); it has:%s", page_path, usage,
		     text_string(&have));
}

START_TEST(test_each_command_synopsis_is_its_usage_line)
{
	const char *command = commands[_i];
	char page_path[256];
	snprintf(page_path, sizeof page_path, "man/sigtrig-%s.1", command);
	char *content = read_file(source_path(page_path));
	ck_assert_msg(content != NULL, "%s: cannot read it: %s", page_path, strerror(errno));
	struct page_lines synopsis;
	page_lines_read(&synopsis, content, "SYNOPSIS");
	ck_assert_msg(synopsis.found, "%s has no SYNOPSIS section", page_path);

	char *output;
	char *usage = sigtrig_usage(command, NULL, &output);
	expect_in_synopsis(page_path, &synopsis, usage);
	/* A command of subcommands: each subcommand's own usage line too. */
	if (strstr(usage, "<subcommand>") != NULL) {
		char *names[MAX_NAMES];
		size_t count = listed_subcommands(output, names, MAX_NAMES);
		ck_assert_msg(count > 0, "sigtrig %s -h lists no subcommands", command);
		for (size_t i = 0; i < count; i++) {
			char *sub_usage = sigtrig_usage(command, names[i], NULL);
			expect_in_synopsis(page_path, &synopsis, sub_usage);
			free(sub_usage);
			free(names[i]);
		}
	}
	free(usage);
	free(output);
	page_lines_free(&synopsis);
	free(content);
}
END_TEST

START_TEST(test_sigtrigd_synopsis_is_its_usage_line)
{
	char program[PATH_MAX + 16];
	snprintf(program, sizeof program, "%s/sigtrigd", build_dir);
	if (access(program, X_OK) != 0) {
		printf("test_manpages: note: %s is not built; sigtrigd(8)'s SYNOPSIS is not checked\n", program);
		return;
	}
	const char *argv[] = { program, "--help", NULL };
	char *out, *err;
	ck_assert_int_eq(run_program(argv, &out, &err), 0);
	char *usage = usage_line(out);
	ck_assert_msg(usage != NULL, "sigtrigd --help printed no usage line: %s", out);
	char *content = read_source_file("man/sigtrigd.8");
	struct page_lines synopsis;
	page_lines_read(&synopsis, content, "SYNOPSIS");
	ck_assert_msg(synopsis.found, "man/sigtrigd.8 has no SYNOPSIS section");
	expect_in_synopsis("man/sigtrigd.8", &synopsis, usage);
	page_lines_free(&synopsis);
	free(content);
	free(usage);
	free(out);
	free(err);
}
END_TEST

START_TEST(test_sigtrig_conf_lists_every_key_with_its_default)
{
	char *declarations = read_source_file("src/config_keys.def");
	char *content = read_source_file("man/sigtrig.conf.5");
	struct page_lines lines;
	page_lines_read(&lines, content, NULL);
	struct text missing = { 0 };
	size_t keys = 0;
	for (const char *entry = declarations; (entry = strstr(entry, "\nCONFIG_KEY(")) != NULL;) {
		entry += strlen("\nCONFIG_KEY(");
		const char *cursor = entry;
		char *key = next_string_literal(&cursor);
		char *default_value = next_string_literal(&cursor);
		ck_assert_msg(key != NULL && default_value != NULL, "src/config_keys.def: cannot read %.40s",
			      entry);
		char wanted[1024];
		snprintf(wanted, sizeof wanted, "%s = %s", key, default_value);
		/* An empty default leaves "key =". */
		size_t length = strlen(wanted);
		while (length > 0 && wanted[length - 1] == ' ')
			wanted[--length] = '\0';
		if (!page_lines_contain(&lines, wanted))
			text_printf(&missing, "\n    %s", wanted);
		keys++;
		free(key);
		free(default_value);
	}
	ck_assert_msg(keys > 0, "src/config_keys.def declares no key");
	ck_assert_msg(missing.data == NULL,
		      "man/sigtrig.conf.5 lacks these \"key = default\" lines (e.g. a .TP tag "
		      "\\fBkey\\fR = \\fIdefault\\fR):%s",
		      text_string(&missing));
	page_lines_free(&lines);
	free(content);
	free(declarations);
}
END_TEST

START_TEST(test_sigtrig_page_lists_every_command)
{
	char *content = read_source_file("man/sigtrig.1");
	struct page_lines section, all;
	page_lines_read(&section, content, "COMMANDS");
	page_lines_read(&all, content, NULL);
	ck_assert_msg(section.found, "man/sigtrig.1 has no COMMANDS section");
	struct text missing = { 0 };
	for (size_t c = 0; c < command_count; c++) {
		/* The command as the tag of a .TP entry of COMMANDS. */
		bool tagged = false;
		for (size_t i = 0; i + 1 < section.count && !tagged; i++)
			tagged = strncmp(section.sources[i], ".TP", 3) == 0 && section.lines[i + 1] != NULL &&
				 strcmp(section.lines[i + 1], commands[c]) == 0;
		char reference[128];
		snprintf(reference, sizeof reference, "sigtrig-%s(1)", commands[c]);
		bool referenced = false;
		for (size_t i = 0; i < all.count && !referenced; i++)
			referenced = all.lines[i] != NULL && strstr(all.lines[i], reference) != NULL;
		if (!tagged)
			text_printf(&missing, "\n    no \".TP\" entry \"%s\" in COMMANDS", commands[c]);
		if (!referenced)
			text_printf(&missing, "\n    no reference to %s", reference);
	}
	ck_assert_msg(missing.data == NULL, "man/sigtrig.1:%s", text_string(&missing));
	page_lines_free(&section);
	page_lines_free(&all);
	free(content);
}
END_TEST

START_TEST(test_each_page_formats_without_warnings)
{
	const char *page = pages[_i];
	char *path = strdup(source_path(page));
	char *content = read_file(path);
	ck_assert_msg(content != NULL, "%s: cannot read it: %s", page, strerror(errno));
	ck_assert_msg(strncmp(content, ".TH ", 4) == 0 || strstr(content, "\n.TH ") != NULL,
		      "%s is empty or has no .TH line", page);
	free(content);
	const char *groff[] = { "groff", "-man", "-ww", "-z", path, NULL };
	const char *man[] = { "man", "--warnings", "-l", path, NULL };
	const char *const *argv;
	if (program_in_path("groff")) {
		argv = groff;
	} else if (program_in_path("man")) {
		argv = man;
	} else {
		printf("test_manpages: note: neither groff nor man is installed; %s is not formatted\n", page);
		free(path);
		return;
	}
	char *out, *err;
	int status = run_program(argv, &out, &err);
	ck_assert_msg(status == 0 && *err == '\0', "%s %s: exit %d, warnings:\n%s", argv[0], page, status, err);
	free(out);
	free(err);
	free(path);
}
END_TEST

static Suite *manpages_suite(void)
{
	Suite *suite = suite_create("manpages");
	TCase *synopsis = tcase_create("synopsis");
	tcase_add_loop_test(synopsis, test_each_command_synopsis_is_its_usage_line, 0, (int)command_count);
	tcase_add_test(synopsis, test_sigtrigd_synopsis_is_its_usage_line);
	suite_add_tcase(suite, synopsis);
	TCase *content = tcase_create("content");
	tcase_add_test(content, test_sigtrig_conf_lists_every_key_with_its_default);
	tcase_add_test(content, test_sigtrig_page_lists_every_command);
	suite_add_tcase(suite, content);
	TCase *format = tcase_create("format");
	tcase_set_timeout(format, 60);
	tcase_add_loop_test(format, test_each_page_formats_without_warnings, 0, (int)page_count);
	suite_add_tcase(suite, format);
	return suite;
}

int main(void)
{
	const char *const sources[] = { getenv("SIGTRIG_SOURCE_DIR"), ".", ".." };
	const char *const builds[] = { getenv("SIGTRIG_BUILD_DIR"), ".", ".." };
	find_directory(source_dir, sizeof source_dir, sources, 3, "cmd/commands.def");
	find_directory(build_dir, sizeof build_dir, builds, 3, "sigtrig");
	read_commands();
	read_pages();
	if (command_count == 0 || page_count == 0) {
		fprintf(stderr, "test_manpages: no commands in %s/cmd/commands.def or no pages in "
				"%s/man/Makefile.inc\n",
			source_dir, source_dir);
		return EXIT_FAILURE;
	}
	SRunner *runner = srunner_create(manpages_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	for (size_t i = 0; i < command_count; i++)
		free(commands[i]);
	for (size_t i = 0; i < page_count; i++)
		free(pages[i]);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
