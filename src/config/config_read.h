/* config_read.h - reading untrusted YAML text into a libyaml document with
 * bounded work (private to src/config).
 *
 * libyaml's document loader resolves an alias to the node it names, so a
 * few kilobytes of nested aliases stand for billions of nodes to whoever
 * walks the document; it reads only the first document of a stream; its
 * reader errors carry a byte offset, not a line. mt_yaml_read puts a cheap
 * event pass in front of the loader that refuses what a configuration
 * never needs (many aliases, a second document, deep nesting, huge node
 * counts, bytes that are not UTF-8), each with the file, the line and the
 * key being read, and reports syntax errors at the line libyaml names.
 * The walk over the document (config_load.c) then spends a budget of node
 * visits derived from the counts here. */
#ifndef MTLORA_CONFIG_READ_H
#define MTLORA_CONFIG_READ_H

#include <stddef.h>
#include <yaml.h>

#include "mtlora/base/status.h"

#define MT_CONFIG_MAX_BYTES (1u << 20) /* a configuration is a few KB */
#define MT_YAML_MAX_ALIASES 64
#define MT_YAML_MAX_DEPTH 32
#define MT_YAML_MAX_NODES 20000
/* Node visits the walk may spend: each node a few times over, and room for
 * a flat use of aliases (64 aliases of 64-node subtrees); nested alias
 * chains (the bombs) expand exponentially and exceed it within a few
 * thousand visits. */
#define MT_YAML_VISIT_BUDGET(nodes) (4 * (size_t)(nodes) + 4096)

/* Parses text[0..len) (need not be NUL-terminated) as at most one YAML
 * document into *doc, after the checks above; `name` (a file, "--opts
 * KEY") starts every message. *nodes receives the document's node count.
 * On MT_OK the caller owns *doc (yaml_document_delete); an empty stream
 * gives a document without a root. */
mt_status mt_yaml_read(const char *text, size_t len, const char *name, yaml_document_t *doc,
                       size_t *nodes, char *err, size_t errlen);

/* Decodes one UTF-8 character of s[0..n): returns its width and sets *cp,
 * or 0 for an invalid, overlong, surrogate or truncated sequence. */
size_t mt_utf8_next(const unsigned char *s, size_t n, unsigned *cp);

/* Whether libyaml's reader accepts code point cp in a stream (YAML's
 * printable set: tab, line breaks, printable ASCII, most of Unicode). */
int mt_yaml_printable(unsigned cp);

#endif
