/* The two head scans of the L7 hot path, in C: ingress/headscan.py is the same module in
 * Python (the reference, the pure build's, and what SEAWAY_PURE=1 imports); setup.py
 * builds this one as the extension `ingress.headscan`, which Python imports first.
 * tests/ingress/test_headscan.py checks that both give the same answer on a corpus of
 * valid, invalid and randomly mutated heads.
 *
 * Both run on heads strict llhttp accepted (CRLF line ends only, no obs-fold, no NUL or
 * control characters, a colon on every field line), read one pass, allocate nothing, and
 * never read outside the bytes object. Case is folded for ASCII letters only, as
 * bytes.lower() does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static inline unsigned char lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Whether the bytes at p (n of them left) start with `word` (lower case), case folded. */
static inline int starts(const unsigned char *p, Py_ssize_t n, const char *word, Py_ssize_t len) {
    if (n < len)
        return 0;
    for (Py_ssize_t i = 0; i < len; i++)
        if (lower(p[i]) != (unsigned char)word[i])
            return 0;
    return 1;
}

#define STARTS(p, n, lit) starts((p), (n), (lit), (Py_ssize_t)(sizeof(lit) - 1))

/* "proxy-" then any bytes but ':' and CR, then ':' (any Proxy-* field). */
static int proxy_field(const unsigned char *p, Py_ssize_t n) {
    if (!STARTS(p, n, "proxy-"))
        return 0;
    for (Py_ssize_t i = 6; i < n; i++) {
        if (p[i] == ':')
            return 1;
        if (p[i] == '\r')
            return 0;
    }
    return 0;
}

/* Whether the field value at p (after the colon) is `token` alone: optional spaces and
 * tabs, the token (case folded), optional spaces and tabs, then CR. */
static int value_is(const unsigned char *p, Py_ssize_t n, const char *token, Py_ssize_t len) {
    Py_ssize_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (!starts(p + i, n - i, token, len))
        return 0;
    i += len;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return i < n && p[i] == '\r';
}

/* The next CRLF at or after `from`, or -1. */
static inline Py_ssize_t next_crlf(const unsigned char *s, Py_ssize_t n, Py_ssize_t from) {
    while (from + 1 < n) {
        const unsigned char *cr = memchr(s + from, '\r', (size_t)(n - 1 - from));
        if (cr == NULL)
            return -1;
        Py_ssize_t at = cr - s;
        if (s[at + 1] == '\n')
            return at;
        from = at + 1;
    }
    return -1;
}

/* One of the request fields the proxy acts on, other than Host (ingress/request.py's
 * _FIELDS): the line's name starts at p. */
static int acted_on(const unsigned char *p, Py_ssize_t n) {
    if (n == 0)
        return 0;
    switch (lower(p[0])) {
    case 'c':
        return STARTS(p, n, "content-length:") || STARTS(p, n, "connection:");
    case 't':
        return STARTS(p, n, "transfer-encoding:") || STARTS(p, n, "te:") ||
               STARTS(p, n, "trailer:");
    case 'u':
        return STARTS(p, n, "upgrade:");
    case 'e':
        return STARTS(p, n, "expect:");
    case 'k':
        return STARTS(p, n, "keep-alive:");
    case 'p':
        return proxy_field(p, n);
    case 'x':
        return STARTS(p, n, "x-forwarded-for:") || STARTS(p, n, "x-forwarded-proto:") ||
               STARTS(p, n, "x-forwarded-host:") || STARTS(p, n, "x-forwarded-port:") ||
               STARTS(p, n, "x-real-ip:");
    default:
        return 0;
    }
}

static int bytes_arg(PyObject *arg, const unsigned char **s, Py_ssize_t *n) {
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "expected bytes, got %.100s", Py_TYPE(arg)->tp_name);
        return -1;
    }
    *s = (const unsigned char *)PyBytes_AS_STRING(arg);
    *n = PyBytes_GET_SIZE(arg);
    return 0;
}

static PyObject *only_host(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const unsigned char *s;
    Py_ssize_t n, start, host = -1;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "only_host(head, start) takes 2 arguments");
        return NULL;
    }
    if (bytes_arg(args[0], &s, &n) < 0)
        return NULL;
    start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred())
        return NULL;
    if (start < 0)
        start = 0;
    for (Py_ssize_t at = next_crlf(s, n, start); at >= 0; at = next_crlf(s, n, at + 2)) {
        const unsigned char *name = s + at + 2;
        Py_ssize_t left = n - at - 2;
        if (left > 0 && lower(name[0]) == 'h' && STARTS(name, left, "host:")) {
            if (host >= 0)
                return PyLong_FromLong(-1); /* a second Host */
            host = at + 7;
        } else if (acted_on(name, left)) {
            return PyLong_FromLong(-1);
        }
    }
    return PyLong_FromSsize_t(host);
}

static PyObject *must_go(PyObject *module, PyObject *arg) {
    const unsigned char *s;
    Py_ssize_t n;
    if (bytes_arg(arg, &s, &n) < 0)
        return NULL;
    for (Py_ssize_t at = next_crlf(s, n, 0); at >= 0; at = next_crlf(s, n, at + 2)) {
        const unsigned char *p = s + at + 2;
        Py_ssize_t left = n - at - 2;
        int go = 0;
        if (left == 0)
            break;
        switch (lower(p[0])) {
        case 'c':
            go = STARTS(p, left, "connection:") &&
                 !value_is(p + 11, left - 11, "keep-alive", 10);
            break;
        case 'k':
            go = STARTS(p, left, "keep-alive:");
            break;
        case 'p':
            go = proxy_field(p, left);
            break;
        case 't':
            go = STARTS(p, left, "te:") || STARTS(p, left, "trailer:") ||
                 (STARTS(p, left, "transfer-encoding:") &&
                  !value_is(p + 18, left - 18, "chunked", 7));
            break;
        case 'u':
            go = STARTS(p, left, "upgrade:");
            break;
        }
        if (go)
            Py_RETURN_TRUE;
    }
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"only_host", (PyCFunction)(void (*)(void))only_host, METH_FASTCALL,
     "only_host(head, start) -> int\n\nThe offset just past 'Host:' of the head's one Host "
     "field when no other field the proxy acts on is present from `start`, else -1."},
    {"must_go", must_go, METH_O,
     "must_go(head) -> bool\n\nWhether a response head has a field that must not reach the "
     "client as it is (a hop-by-hop field other than Connection: keep-alive and "
     "Transfer-Encoding: chunked)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ingress.headscan",
    "The L7 hot path's head scans in C (ingress/headscan.py is the reference).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_headscan(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "NATIVE", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
