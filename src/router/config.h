/* The routing policy file (JSON) -> router policy, cloud backend and privacy patterns. Unknown
 * keys and wrong types are errors naming them: a typo in a privacy setting must not silently
 * send data to the cloud. With no file: everything local. */
#ifndef HAI_ROUTER_CONFIG_H
#define HAI_ROUTER_CONFIG_H

#include "../cloud/cloud.h"
#include "router.h"

typedef struct hybrid_config {
    router_policy policy;
    bool has_cloud;
    cloud_config cloud;
    char **patterns, **keywords;
    size_t n_patterns, n_keywords;
} hybrid_config;

/* path NULL: the defaults. The cloud API key is read from the environment variable the file
 * names (cloud.api_key_env); it never appears in the file. */
hai_status hybrid_config_load(const char *path, hybrid_config *out, hai_error *err);
/* The same from JSON text in memory (the file's contents). */
hai_status hybrid_config_parse(const char *json, size_t len, hybrid_config *out, hai_error *err);
void hybrid_config_free(hybrid_config *c);

#endif
