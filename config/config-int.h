/*
 * Internal to config/: the loader's state and the helpers its parts share.
 * Not for the rest of the daemon, which sees only config.h.
 */
#ifndef CONFIG_INT_H
#define CONFIG_INT_H

#include "config/config.h"
#include "config/schema.h"

#include <libconfig.h>

struct load {
	const char		*path;
	char			*dir;		/* absolute directory of the file */
	config_t		 cf;
	struct schema_errors	 errs;
};

/* config.c: keys with the schema's defaults, secrets, paths. */
config_setting_t	*cfg_find(const config_setting_t *base, const char *rel);
const char	*cfg_str(const config_setting_t *base, const char *prefix,
    const char *rel);
char	*cfg_dup_str(const config_setting_t *base, const char *prefix,
    const char *rel);
long long	 cfg_int(const config_setting_t *base, const char *prefix,
    const char *rel);
double	 cfg_float(const config_setting_t *base, const char *prefix,
    const char *rel);
int	 cfg_bool(const config_setting_t *base, const char *prefix,
    const char *rel);
char	**cfg_strings(const config_setting_t *s, size_t *n);
void	 cfg_strings_free(char **v);
char	*cfg_path(const struct load *ld, const char *p);
void	 cfg_secret_free(char *s);
char	*cfg_secret(struct load *ld, const config_setting_t *adapter,
    const char *adapter_path, const char *key);
int	 cfg_list_length(const config_setting_t *s);

/* The sections, in the order load_config() calls them. */
void	 cfg_load_repos(struct load *ld, struct config *c);
void	 cfg_load_agents(struct load *ld, struct config *c);
void	 cfg_load_brains(struct load *ld, struct config *c);
void	 cfg_load_routes(struct load *ld, struct config *c);
void	 cfg_load_slack(struct load *ld, struct config *c);
void	 cfg_load_matrix(struct load *ld, struct config *c);
void	 cfg_load_web(struct load *ld, struct config *c);
void	 cfg_load_webhooks(struct load *ld, struct config *c);
void	 cfg_brain_keys(struct load *ld, struct config *c);
void	 cfg_load_agent_listener(struct load *ld, struct config *c);

/* For config_free(). */
void	 cfg_kube_free(struct cfg_kube *k);
void	 cfg_brains_free(struct config *c);

#endif
