/* The head scans of the L7 hot path, in C: ingress/headscan.py is the same module in
 * Python (the reference, the pure build's, and what SEAWAY_PURE=1 imports); setup.py
 * builds this one as the extension `ingress.headscan`, which Python imports first.
 * tests/ingress/test_headscan.py checks that both give the same answer on a corpus of
 * valid, invalid and randomly mutated heads, and on random bytes.
 *
 * Both run on heads strict llhttp accepted (CRLF line ends only, no obs-fold, no NUL or
 * control characters, a colon on every field line), read one pass, allocate nothing, and
 * never read outside the bytes object. Case is folded for ASCII letters only, as
 * bytes.lower() does.
 */
#include "scan.h"

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

/* A Python index argument, as bytes.find takes its start: negative counts from the end. */
static int start_arg(PyObject *arg, Py_ssize_t n, Py_ssize_t *start) {
    Py_ssize_t at = PyLong_AsSsize_t(arg);
    if (at == -1 && PyErr_Occurred())
        return -1;
    if (at < 0) {
        at += n;
        if (at < 0)
            at = 0;
    }
    *start = at;
    return 0;
}

static PyObject *common_host(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const unsigned char *s;
    Py_ssize_t n, start, host = -1;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "common_host(head, start) takes 2 arguments");
        return NULL;
    }
    if (bytes_arg(args[0], &s, &n) < 0 || start_arg(args[1], n, &start) < 0)
        return NULL;
    for (Py_ssize_t at = next_crlf(s, n, start); at >= 0; at = next_crlf(s, n, at + 2)) {
        const unsigned char *name = s + at + 2;
        Py_ssize_t left = n - at - 2;
        if (left > 0 && lower(name[0]) == 'h' && STARTS(name, left, "host:")) {
            if (host >= 0)
                Py_RETURN_NONE; /* a second Host */
            host = at + 7;
        } else if (acted_on(name, left)) {
            Py_RETURN_NONE;
        }
    }
    if (host < 0)
        Py_RETURN_NONE;
    /* The value: to the first CR (as head[host:head.find(b"\r", host)], which without a
     * CR is head[host:-1]), without leading and trailing spaces and tabs. */
    const unsigned char *cr = host < n ? memchr(s + host, '\r', (size_t)(n - host)) : NULL;
    Py_ssize_t end = cr != NULL ? cr - s : n - 1;
    while (host < end && (s[host] == ' ' || s[host] == '\t'))
        host++;
    while (end > host && (s[end - 1] == ' ' || s[end - 1] == '\t'))
        end--;
    if (end < host)
        end = host;
    return PyBytes_FromStringAndSize((const char *)s + host, end - host);
}

static PyObject *head_end(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const unsigned char *s;
    Py_ssize_t n, at;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "head_end(data, start) takes 2 arguments");
        return NULL;
    }
    if (bytes_arg(args[0], &s, &n) < 0 || start_arg(args[1], n, &at) < 0)
        return NULL;
    while (at + 3 < n) {
        const unsigned char *cr = memchr(s + at, '\r', (size_t)(n - 3 - at));
        if (cr == NULL)
            break;
        at = cr - s;
        if (cr[1] == '\n' && cr[2] == '\r' && cr[3] == '\n')
            return PyLong_FromSsize_t(at);
        at++;
    }
    return PyLong_FromLong(-1);
}

static PyObject *request_line(PyObject *module, PyObject *arg) {
    const unsigned char *s, *sp1, *sp2, *v;
    Py_ssize_t n;
    if (bytes_arg(arg, &s, &n) < 0)
        return NULL;
    /* As head.split(b" ", 2): the method before the first space, the target up to the
     * second; then exactly "HTTP/1.1\r\n" or "HTTP/1.0\r\n". */
    sp1 = memchr(s, ' ', (size_t)n);
    if (sp1 == NULL)
        Py_RETURN_NONE;
    sp2 = memchr(sp1 + 1, ' ', (size_t)(n - (sp1 + 1 - s)));
    if (sp2 == NULL || sp2 == sp1 + 1 || (s + n) - (sp2 + 1) < 10)
        Py_RETURN_NONE;
    v = sp2 + 1;
    if (memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '1' && v[7] != '0') || v[8] != '\r' ||
        v[9] != '\n')
        Py_RETURN_NONE;
    PyObject *method = PyBytes_FromStringAndSize((const char *)s, sp1 - s);
    PyObject *target = PyBytes_FromStringAndSize((const char *)sp1 + 1, sp2 - sp1 - 1);
    if (method == NULL || target == NULL) {
        Py_XDECREF(method);
        Py_XDECREF(target);
        return NULL;
    }
    PyObject *minor = v[7] == '1' ? Py_True : Py_False;
    Py_INCREF(minor);
    PyObject *line = PyTuple_New(3);
    if (line == NULL) {
        Py_DECREF(method);
        Py_DECREF(target);
        Py_DECREF(minor);
        return NULL;
    }
    PyTuple_SET_ITEM(line, 0, method);
    PyTuple_SET_ITEM(line, 1, target);
    PyTuple_SET_ITEM(line, 2, minor);
    return line;
}

static PyObject *before_query(PyObject *module, PyObject *arg) {
    const unsigned char *s, *q;
    Py_ssize_t n;
    if (bytes_arg(arg, &s, &n) < 0)
        return NULL;
    q = memchr(s, '?', (size_t)n);
    if (q == NULL) {
        Py_INCREF(arg);
        return arg;
    }
    return PyBytes_FromStringAndSize((const char *)s, q - s);
}

static PyObject *field(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const unsigned char *s, *name;
    Py_ssize_t n, len;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "field(head, name) takes 2 arguments");
        return NULL;
    }
    if (bytes_arg(args[0], &s, &n) < 0 || bytes_arg(args[1], &name, &len) < 0)
        return NULL;
    for (Py_ssize_t at = next_crlf(s, n, 0); at >= 0; at = next_crlf(s, n, at + 2)) {
        const unsigned char *p = s + at + 2;
        Py_ssize_t left = n - at - 2, i;
        if (left <= len || p[len] != ':')
            continue;
        for (i = 0; i < len && lower(p[i]) == lower(name[i]); i++)
            ;
        if (i < len)
            continue;
        /* the value: after spaces and tabs, up to the next CR (or the end), without
         * trailing spaces and tabs */
        Py_ssize_t a = at + 2 + len + 1;
        while (a < n && ows(s[a]))
            a++;
        const unsigned char *cr = memchr(s + a, '\r', (size_t)(n - a));
        Py_ssize_t b = cr != NULL ? cr - s : n;
        while (b > a && ows(s[b - 1]))
            b--;
        return PyBytes_FromStringAndSize((const char *)s + a, b - a);
    }
    Py_RETURN_NONE;
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
    {"common_host", (PyCFunction)(void (*)(void))common_host, METH_FASTCALL,
     "common_host(head, start) -> bytes | None\n\nThe value of the head's one Host field "
     "when no other field the proxy acts on is present from `start`, else None."},
    {"head_end", (PyCFunction)(void (*)(void))head_end, METH_FASTCALL,
     "head_end(data, start) -> int\n\ndata.find(b'\\r\\n\\r\\n', start), without the "
     "method call's argument parsing."},
    {"request_line", request_line, METH_O,
     "request_line(head) -> tuple[bytes, bytes, bool] | None\n\nThe method, the target "
     "and whether the version is 1.1, of a request line in the one shape the proxy takes "
     "fast (single spaces, HTTP/1.1 or HTTP/1.0); None for any other."},
    {"before_query", before_query, METH_O,
     "before_query(target) -> bytes\n\nThe request target up to its first '?' (itself "
     "when it has none)."},
    {"field", (PyCFunction)(void (*)(void))field, METH_FASTCALL,
     "field(head, name) -> bytes | None\n\nThe value of the head's first field called "
     "`name` (case folded), without the spaces and tabs around it, or None."},
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

PyMODINIT_FUNC PyInit_headscan(void) { return scan_module(&module); }
