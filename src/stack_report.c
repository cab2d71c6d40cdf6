/* What 'up' and 'down' did, shown the same way by both. */
#include <stdio.h>

#include "stack.h"

void stack_report_print(FILE *out, const struct stack_report *report)
{
	for (size_t i = 0; i < report->count; i++) {
		const struct stack_outcome *outcome = &report->outcomes[i];
		const char *phrase = stack_status_phrase(outcome->status);
		/* Padded only when an address follows, so the addresses line up. */
		if (outcome->address[0] != '\0')
			fprintf(out, "%-10s %-8s %s", outcome->component, phrase, outcome->address);
		else
			fprintf(out, "%-10s %s", outcome->component, phrase);
		if (outcome->pid != 0)
			fprintf(out, " (pid %ld)", (long)outcome->pid);
		fputc('\n', out);
	}
}

json_t *stack_report_json(const struct stack_report *report)
{
	json_t *components = json_object();
	for (size_t i = 0; i < report->count; i++) {
		const struct stack_outcome *outcome = &report->outcomes[i];
		json_t *entry = json_pack("{s:s}", "status", stack_status_name(outcome->status));
		if (outcome->pid != 0)
			json_object_set_new(entry, "pid", json_integer(outcome->pid));
		if (outcome->address[0] != '\0')
			json_object_set_new(entry, "address", json_string(outcome->address));
		json_object_set_new(components, outcome->component, entry);
	}
	json_t *object = json_pack("{s:s}", "dir", report->dir);
	if (report->conf_path[0] != '\0')
		json_object_set_new(object, "conf", json_string(report->conf_path));
	json_object_set_new(object, "components", components);
	return object;
}
