/*
 * Where the CPU goes, read from /proc: each watched process's user and
 * system time, its reaped children's, and its live children's. A
 * PostgreSQL server does its work in backends, children of the
 * postmaster, so a process alone would miss nearly all of it; a backend
 * that exits inside a window moves from the live children to the
 * postmaster's cutime/cstime, so the sum stays continuous.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "loadgen.h"

struct process_stat {
	pid_t pid, parent;
	char name[20];
	unsigned long long ticks; /* utime + stime + cutime + cstime */
};

/* Parses /proc/.../stat. The name is in parentheses and may hold spaces or ')': scan from the last ')'. */
static bool read_stat(const char *path, struct process_stat *stat)
{
	char text[1024];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t length = read(fd, text, sizeof text - 1);
	close(fd);
	if (length <= 0)
		return false;
	text[length] = '\0';
	char *open_paren = strchr(text, '(');
	char *close_paren = strrchr(text, ')');
	if (open_paren == NULL || close_paren == NULL || close_paren < open_paren)
		return false;
	size_t name_length = (size_t)(close_paren - open_paren - 1);
	if (name_length >= sizeof stat->name)
		name_length = sizeof stat->name - 1;
	memcpy(stat->name, open_paren + 1, name_length);
	stat->name[name_length] = '\0';
	stat->pid = (pid_t)atoi(text);
	int parent;
	unsigned long utime, stime;
	long cutime, cstime;
	/* Fields 3 (state) to 17 (cstime), see proc(5). */
	if (sscanf(close_paren + 1, " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld", &parent, &utime,
		   &stime, &cutime, &cstime) != 5)
		return false;
	stat->parent = (pid_t)parent;
	stat->ticks = (unsigned long long)utime + stime + (unsigned long long)(cutime > 0 ? cutime : 0) +
		      (unsigned long long)(cstime > 0 ? cstime : 0);
	return true;
}

static void sample_threads(pid_t pid, struct cpu_sample *sample)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *tasks = opendir(path);
	sample->thread_count = 0;
	if (tasks == NULL)
		return;
	struct dirent *entry;
	while ((entry = readdir(tasks)) != NULL && sample->thread_count < THREAD_SAMPLE_MAX) {
		if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
			continue;
		char stat_path[320];
		snprintf(stat_path, sizeof stat_path, "/proc/%d/task/%s/stat", (int)pid, entry->d_name);
		struct process_stat stat;
		if (!read_stat(stat_path, &stat))
			continue;
		struct thread_ticks *thread = &sample->threads[sample->thread_count++];
		thread->tid = stat.pid;
		snprintf(thread->name, sizeof thread->name, "%s", stat.name);
		thread->ticks = stat.ticks;
	}
	closedir(tasks);
}

/* Time the machine's CPUs spent on anything but idling, from the first line of /proc/stat. */
static unsigned long long machine_busy_ticks(void)
{
	FILE *file = fopen("/proc/stat", "r");
	if (file == NULL)
		return 0;
	unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
	int fields = fscanf(file, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &system, &idle, &iowait,
			    &irq, &softirq, &steal);
	fclose(file);
	return fields >= 7 ? user + nice + system + irq + softirq + steal : 0;
}

void cpu_sample_take(const struct watched_process *watched, size_t count, pid_t extra, struct cpu_sample *sample)
{
	memset(sample->ticks, 0, sizeof sample->ticks);
	sample->extra_ticks = 0;
	/* One pass over every process: each is added to the watched process it is, or is a child of. */
	DIR *proc = opendir("/proc");
	struct dirent *entry;
	while (proc != NULL && (entry = readdir(proc)) != NULL) {
		if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
			continue;
		char path[300];
		snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
		struct process_stat stat;
		if (!read_stat(path, &stat))
			continue;
		for (size_t i = 0; i < count; i++)
			if (stat.pid == watched[i].pid || stat.parent == watched[i].pid)
				sample->ticks[i] += stat.ticks;
		if (extra > 0 && stat.pid == extra)
			sample->extra_ticks = stat.ticks;
	}
	if (proc != NULL)
		closedir(proc);
	struct rusage usage;
	getrusage(RUSAGE_SELF, &usage);
	sample->self_seconds = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
			       (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
	if (count > 0)
		sample_threads(watched[0].pid, sample);
	else
		sample->thread_count = 0;
	sample->machine_busy_ticks = machine_busy_ticks();
	sample->at = monotonic_seconds();
}

double cpu_seconds_between(unsigned long long before, unsigned long long after)
{
	static long ticks_per_second;
	if (ticks_per_second == 0)
		ticks_per_second = sysconf(_SC_CLK_TCK);
	return after > before ? (double)(after - before) / (double)ticks_per_second : 0;
}

bool process_reset_peak_rss(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
	FILE *file = fopen(path, "w");
	if (file == NULL)
		return false;
	bool written = fputs("5", file) >= 0;
	return fclose(file) == 0 && written;
}

long process_peak_rss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return -1;
	long peak = -1;
	while (fgets(line, sizeof line, file) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &peak) == 1)
			break;
	fclose(file);
	return peak;
}
