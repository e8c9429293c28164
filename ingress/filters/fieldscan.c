/* Field scans of a filtered route's requests and answers, in C: ingress/filters/fieldscan.py is
 * the same module in Python (the reference, the pure build's, and what SEAWAY_PURE=1
 * imports); setup.py builds this one as the extension `ingress.filters.fieldscan`, which
 * Python imports first. tests/ingress/filters/test_fieldscan.py checks that both give the
 * same answers on a corpus of heads and on randomly mutated ones.
 *
 * Both run on heads strict llhttp accepted (CRLF line ends only, no obs-fold, no NUL or
 * control characters but HTAB, a colon right after every field name), read one pass,
 * and never read outside the bytes object. Case is folded for ASCII letters only.
 */
#include "../scan.h"

/* The cookie called `name` in the Cookie value s[from:to] ("a=1; b=2"): the offsets of
 * its part ("name=value", spaces and tabs around it not included) in *start, *stop;
 * 1 if found. Parts are cut at ';', as route_conditions.cookie_value cuts them. */
static int cookie_in(const unsigned char *s, Py_ssize_t from, Py_ssize_t to,
                     const unsigned char *name, Py_ssize_t len, Py_ssize_t *start,
                     Py_ssize_t *stop) {
    Py_ssize_t i = from;
    while (i <= to) {
        const unsigned char *semi = memchr(s + i, ';', (size_t)(to - i));
        Py_ssize_t end = semi == NULL ? to : semi - s;
        Py_ssize_t a = i, b = end;
        while (a < b && ows(s[a]))
            a++;
        while (b > a && ows(s[b - 1]))
            b--;
        if (b - a > len && s[a + len] == '=' && memcmp(s + a, name, (size_t)len) == 0) {
            *start = a;
            *stop = b;
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

static const unsigned char COOKIE[] = "cookie:";

/* The first cookie called `name` in the Cookie fields of head s[:n], as cookie_in gives
 * it; 1 if found. */
static int find_cookie(const unsigned char *s, Py_ssize_t n, const unsigned char *name,
                       Py_ssize_t len, Py_ssize_t *start, Py_ssize_t *stop) {
    for (Py_ssize_t at = next_crlf(s, n, 0); at >= 0;) {
        const unsigned char *p = s + at + 2;
        Py_ssize_t left = n - at - 2;
        Py_ssize_t next = next_crlf(s, n, at + 2);
        if (left >= 7 && lower(p[0]) == 'c' && starts(p, left, COOKIE, 7)) {
            /* the value: up to the next CR (a CRLF in a head llhttp accepted) */
            Py_ssize_t from = at + 9;
            const unsigned char *cr = memchr(s + from, '\r', (size_t)(n - from));
            Py_ssize_t to = cr == NULL ? n : cr - s;
            if (cookie_in(s, from, to, name, len, start, stop))
                return 1;
        }
        at = next;
    }
    return 0;
}

static PyObject *cookie(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const unsigned char *s, *name;
    Py_ssize_t n, len, start, stop;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "cookie(head, name) takes 2 arguments");
        return NULL;
    }
    if (bytes_arg(args[0], &s, &n) < 0 || bytes_arg(args[1], &name, &len) < 0)
        return NULL;
    if (find_cookie(s, n, name, len, &start, &stop))
        return PyBytes_FromStringAndSize((const char *)s + start, stop - start);
    Py_RETURN_NONE;
}

static PyObject *sticky_key(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const unsigned char *s, *name, *tag;
    Py_ssize_t n, len, tlen, start, stop;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "sticky_key(head, name, tag) takes 3 arguments");
        return NULL;
    }
    if (bytes_arg(args[0], &s, &n) < 0 || bytes_arg(args[1], &name, &len) < 0 ||
        bytes_arg(args[2], &tag, &tlen) < 0)
        return NULL;
    if (!find_cookie(s, n, name, len, &start, &stop))
        Py_RETURN_NONE;
    Py_ssize_t from = start + len + 1; /* past "name=" */
    const unsigned char *bar = memchr(s + from, '|', (size_t)(stop - from));
    Py_ssize_t end = stop;
    if (bar != NULL) {
        end = bar - s;
        if (stop - end - 1 != tlen || memcmp(bar + 1, tag, (size_t)tlen) != 0)
            Py_RETURN_NONE; /* another backend's cookie */
    }
    return PyBytes_FromStringAndSize((const char *)s + from, end - from);
}

/* The field scan of has_field: whether a field of s[:end] starts with `prefix`. */
static int has_prefix(const unsigned char *s, Py_ssize_t end, const unsigned char *prefix,
                      Py_ssize_t len) {
    unsigned char first = prefix[0];
    for (Py_ssize_t at = next_crlf(s, end, 0); at >= 0; at = next_crlf(s, end, at + 2)) {
        const unsigned char *p = s + at + 2;
        Py_ssize_t left = end - at - 2;
        if (left > 0 && lower(p[0]) == first && starts(p, left, prefix, len))
            return 1;
    }
    return 0;
}

static PyObject *has_field(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const unsigned char *s, *prefix;
    Py_ssize_t n, len, end;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "has_field(head, end, prefix) takes 3 arguments");
        return NULL;
    }
    if (bytes_arg(args[0], &s, &n) < 0 || bytes_arg(args[2], &prefix, &len) < 0)
        return NULL;
    end = PyLong_AsSsize_t(args[1]);
    if (end == -1 && PyErr_Occurred())
        return NULL;
    if (end > n)
        end = n;
    if (len == 0) {
        PyErr_SetString(PyExc_ValueError, "has_field: empty prefix");
        return NULL;
    }
    if (has_prefix(s, end, prefix, len))
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

static PyObject *add_fields(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const unsigned char *s, *extra, *replaced;
    Py_ssize_t n, len, rlen, end;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "add_fields(data, end, lines, replaced) takes 4 arguments");
        return NULL;
    }
    if (bytes_arg(args[0], &s, &n) < 0 || bytes_arg(args[2], &extra, &len) < 0 ||
        bytes_arg(args[3], &replaced, &rlen) < 0)
        return NULL;
    end = PyLong_AsSsize_t(args[1]);
    if (end == -1 && PyErr_Occurred())
        return NULL;
    if (end < 4 || end > n || memcmp(s + end - 4, "\r\n\r\n", 4) != 0) {
        PyErr_SetString(PyExc_ValueError, "add_fields: data[:end] is not a head");
        return NULL;
    }
    if (rlen > 0 && has_prefix(s, end, replaced, rlen))
        Py_RETURN_NONE;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n + len);
    if (out == NULL)
        return NULL;
    char *d = PyBytes_AS_STRING(out);
    memcpy(d, s, (size_t)(end - 2));
    memcpy(d + end - 2, extra, (size_t)len);
    memcpy(d + end - 2 + len, s + end - 2, (size_t)(n - end + 2));
    return out;
}

static PyMethodDef methods[] = {
    {"cookie", (PyCFunction)(void (*)(void))cookie, METH_FASTCALL,
     "cookie(head, name) -> bytes | None\n\nThe first cookie called `name` in the head's "
     "Cookie fields, in order, as 'name=value' (spaces and tabs around it cut), or None."},
    {"sticky_key", (PyCFunction)(void (*)(void))sticky_key, METH_FASTCALL,
     "sticky_key(head, name, tag) -> bytes | None\n\nThe KEY of the first cookie called "
     "`name` (`cookie`'s), a value 'KEY|TAG' or 'KEY'; None when there is none or its TAG "
     "is not `tag`."},
    {"has_field", (PyCFunction)(void (*)(void))has_field, METH_FASTCALL,
     "has_field(head, end, prefix) -> bool\n\nWhether a field of head[:end] has a name "
     "starting with `prefix` (lower case), case folded."},
    {"add_fields", (PyCFunction)(void (*)(void))add_fields, METH_FASTCALL,
     "add_fields(data, end, lines, replaced) -> bytes | None\n\n`data` (a head ending at "
     "`end`, then maybe body bytes) with `lines` inserted before the head's blank line; "
     "None when `replaced` is not empty and a field of the head starts with it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ingress.filters.fieldscan",
    "A filtered route's field scans in C (ingress/filters/fieldscan.py is the reference).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_fieldscan(void) { return scan_module(&module); }
