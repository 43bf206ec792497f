/* sql/ internal: the statements on cluster settings (cluster_settings.c;
** the public part is cluster_settings.h). Nothing outside sql/ includes it. */
#ifndef MERIDIAN_SQL_CLUSTER_SETTINGS_INT_H
#define MERIDIAN_SQL_CLUSTER_SETTINGS_INT_H

#include <stdbool.h>

#include "cluster_settings.h"
#include "sql_int.h"

/* SET CLUSTER SETTING name {= | TO} value | DEFAULT, and RESET CLUSTER
** SETTING name: p..end is the text after SET or RESET. Returns -1 when it
** does not start with CLUSTER (the caller goes on), else the statement's
** STMT result. 42704 for an unknown name, 22023 for a bad value, 25001
** inside a transaction block. */
int sqlv__cluster_setting_set(sqlv__run *r, const char *p, const char *end, bool reset);
/* SHOW CLUSTER SETTING name, SHOW [ALL] CLUSTER SETTINGS: p..end is the
** text after SHOW. -1 when it is neither, else the STMT result. */
int sqlv__cluster_settings_show(sqlv__run *r, const char *p, const char *end);

#endif
