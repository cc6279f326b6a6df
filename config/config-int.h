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
config_setting_t	*find(const config_setting_t *base, const char *rel);
const char	*get_str(const config_setting_t *base, const char *prefix,
    const char *rel);
char	*dup_str(const config_setting_t *base, const char *prefix,
    const char *rel);
long long	 get_int(const config_setting_t *base, const char *prefix,
    const char *rel);
double	 get_float(const config_setting_t *base, const char *prefix,
    const char *rel);
int	 get_bool(const config_setting_t *base, const char *prefix,
    const char *rel);
char	**get_strings(const config_setting_t *s, size_t *n);
void	 strings_free(char **v);
char	*resolve_path(const struct load *ld, const char *p);
void	 secret_free(char *s);
char	*resolve_secret(struct load *ld, const config_setting_t *adapter,
    const char *adapter_path, const char *key);
int	 list_length(const config_setting_t *s);

/* The sections, in the order load_config() calls them. */
void	 load_repos(struct load *ld, struct config *c);
void	 load_agents(struct load *ld, struct config *c);
void	 load_brains(struct load *ld, struct config *c);
void	 load_routes(struct load *ld, struct config *c);
void	 load_slack(struct load *ld, struct config *c);
void	 load_matrix(struct load *ld, struct config *c);
void	 load_web(struct load *ld, struct config *c);
void	 load_webhooks(struct load *ld, struct config *c);
void	 resolve_brain_keys(struct load *ld, struct config *c);
void	 load_agent_listener(struct load *ld, struct config *c);

/* For config_free(). */
void	 cfg_kube_free(struct cfg_kube *k);
void	 brains_free(struct config *c);

#endif
