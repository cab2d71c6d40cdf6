/* Paths and small files under the stack directory: pid files, logs, whole-file writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stack.h"

int stack_path(const struct stack *stack, char *buf, size_t size, const char *relative_format, ...)
{
	char relative[PATH_MAX];
	va_list args;
	va_start(args, relative_format);
	int length = vsnprintf(relative, sizeof relative, relative_format, args);
	va_end(args);
	if (length < 0 || (size_t)length >= sizeof relative)
		return -1;
	int written = snprintf(buf, size, "%s/%s", stack->dir, relative);
	return written < 0 || (size_t)written >= size ? -1 : 0;
}

int stack_make_dir(const char *path, mode_t mode, char *err, size_t errsize)
{
	char partial[PATH_MAX];
	if (snprintf(partial, sizeof partial, "%s", path) >= (int)sizeof partial) {
		snprintf(err, errsize, "%s: path too long", path);
		return -1;
	}
	/* Each prefix in turn, so a missing parent is created too. */
	for (char *slash = strchr(partial + 1, '/');; slash = strchr(slash + 1, '/')) {
		if (slash != NULL)
			*slash = '\0';
		if (mkdir(partial, mode) != 0 && errno != EEXIST) {
			snprintf(err, errsize, "cannot create %s: %s", partial, strerror(errno));
			return -1;
		}
		if (slash == NULL)
			break;
		*slash = '/';
	}
	struct stat info;
	if (stat(path, &info) != 0 || !S_ISDIR(info.st_mode)) {
		snprintf(err, errsize, "%s is not a directory", path);
		return -1;
	}
	return 0;
}

static int write_all(int fd, const char *data, size_t length)
{
	while (length > 0) {
		ssize_t written = write(fd, data, length);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			return -1;
		data += written;
		length -= (size_t)written;
	}
	return 0;
}

int stack_write_file_atomic(const char *path, const char *content, mode_t mode, char *err,
			    size_t errsize)
{
	char temporary[PATH_MAX];
	if (snprintf(temporary, sizeof temporary, "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof temporary) {
		snprintf(err, errsize, "%s: path too long", path);
		return -1;
	}
	int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errsize, "cannot write %s: %s", temporary, strerror(errno));
		return -1;
	}
	/* fchmod because open's mode is filtered by the umask. */
	int status = fchmod(fd, mode) == 0 && write_all(fd, content, strlen(content)) == 0 ? 0 : -1;
	int saved = errno;
	if (close(fd) != 0 && status == 0) {
		status = -1;
		saved = errno;
	}
	if (status == 0 && rename(temporary, path) != 0) {
		status = -1;
		saved = errno;
	}
	if (status != 0) {
		unlink(temporary);
		snprintf(err, errsize, "cannot write %s: %s", path, strerror(saved));
	}
	return status;
}

char *stack_read_file(const char *path)
{
	FILE *file = fopen(path, "re");
	if (file == NULL)
		return NULL;
	size_t size = 0, capacity = 4096;
	char *text = malloc(capacity);
	while (text != NULL) {
		size += fread(text + size, 1, capacity - size - 1, file);
		if (size < capacity - 1)
			break;
		capacity *= 2;
		char *grown = realloc(text, capacity);
		if (grown == NULL) {
			free(text);
			text = NULL;
		} else {
			text = grown;
		}
	}
	bool failed = ferror(file) != 0;
	fclose(file);
	if (text == NULL || failed) {
		free(text);
		return NULL;
	}
	text[size] = '\0';
	return text;
}

pid_t stack_read_pid_file(const char *path)
{
	char *text = stack_read_file(path);
	if (text == NULL)
		return 0;
	char *end;
	long pid = strtol(text, &end, 10);
	bool valid = end != text && (*end == '\0' || *end == '\n') && pid > 0;
	free(text);
	return valid ? (pid_t)pid : 0;
}

int stack_write_pid_file(const char *path, pid_t pid, char *err, size_t errsize)
{
	char text[32];
	snprintf(text, sizeof text, "%ld\n", (long)pid);
	return stack_write_file_atomic(path, text, 0644, err, errsize);
}

void stack_print_log_tail(const char *path, int lines)
{
	char *text = stack_read_file(path);
	if (text == NULL)
		return;
	size_t length = strlen(text);
	while (length > 0 && text[length - 1] == '\n')
		text[--length] = '\0';
	/* Walk back over `lines` newlines to find where the tail starts. */
	size_t start = length;
	for (int seen = 0; start > 0; start--)
		if (text[start - 1] == '\n' && ++seen == lines)
			break;
	if (length > 0) {
		fprintf(stderr, "last lines of %s:\n", path);
		for (char *line = text + start; line != NULL && *line != '\0';) {
			char *next = strchr(line, '\n');
			if (next != NULL)
				*next++ = '\0';
			fprintf(stderr, "    %s\n", line);
			line = next;
		}
	}
	free(text);
}
