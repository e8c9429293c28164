/* What seaway's C head scans share (ingress/headscan.c, ingress/filters/fieldscan.c).
 *
 * They read heads strict llhttp accepted, one pass, never outside the bytes object; case
 * is folded for ASCII letters only, as bytes.lower() does.
 */
#ifndef SEAWAY_SCAN_H
#define SEAWAY_SCAN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static inline unsigned char lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static inline int ows(unsigned char c) { return c == ' ' || c == '\t'; }

/* Whether the n bytes at p start with `word` (lower case, len bytes), case folded. */
static inline int starts(const unsigned char *p, Py_ssize_t n, const void *word,
                         Py_ssize_t len) {
    const unsigned char *w = (const unsigned char *)word;
    if (n < len)
        return 0;
    for (Py_ssize_t i = 0; i < len; i++)
        if (lower(p[i]) != w[i])
            return 0;
    return 1;
}

#define STARTS(p, n, lit) starts((p), (n), (lit), (Py_ssize_t)(sizeof(lit) - 1))

/* The next CRLF at or after `from` before `end`, or -1. */
static inline Py_ssize_t next_crlf(const unsigned char *s, Py_ssize_t end, Py_ssize_t from) {
    while (from + 1 < end) {
        const unsigned char *cr = memchr(s + from, '\r', (size_t)(end - 1 - from));
        if (cr == NULL)
            return -1;
        Py_ssize_t at = cr - s;
        if (s[at + 1] == '\n')
            return at;
        from = at + 1;
    }
    return -1;
}

/* A bytes argument's buffer (bytes only: a bytearray could change under the scan). */
static inline int bytes_arg(PyObject *arg, const unsigned char **s, Py_ssize_t *n) {
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "expected bytes, got %.100s", Py_TYPE(arg)->tp_name);
        return -1;
    }
    *s = (const unsigned char *)PyBytes_AS_STRING(arg);
    *n = PyBytes_GET_SIZE(arg);
    return 0;
}

/* The module, with NATIVE = 1 (its Python twin has NATIVE = 0). */
static inline PyObject *scan_module(struct PyModuleDef *def) {
    PyObject *m = PyModule_Create(def);
    if (m != NULL && PyModule_AddIntConstant(m, "NATIVE", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

#endif
