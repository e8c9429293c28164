/* The hash of ingress/filters/hashring.py's ring, where a key falls on it, and a sticky
 * cookie's random key in hex, in C: ingress/filters/ringhash.py is the reference and says
 * why. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../scan.h"

static uint64_t hash_bytes(const unsigned char *s, Py_ssize_t n) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33; /* murmur3's fmix64: every input bit moves every output bit */
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static PyObject *hash64(PyObject *module, PyObject *arg) {
    const unsigned char *s;
    Py_ssize_t n;
    if (bytes_arg(arg, &s, &n) < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(hash_bytes(s, n));
}

static PyObject *ring_index(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    const unsigned char *points, *key;
    Py_ssize_t size, n;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "ring_index(points, key) takes 2 arguments");
        return NULL;
    }
    if (bytes_arg(args[0], &points, &size) < 0 || bytes_arg(args[1], &key, &n) < 0)
        return NULL;
    if (size % 8) {
        PyErr_SetString(PyExc_ValueError, "ring_index: points is not whole 64-bit numbers");
        return NULL;
    }
    uint64_t h = hash_bytes(key, n);
    Py_ssize_t lo = 0, hi = size / 8; /* the first point >= h (bisect_left) */
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        uint64_t p;
        memcpy(&p, points + mid * 8, 8);
        if (p < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return PyLong_FromSsize_t(lo);
}

static PyObject *hex16(PyObject *module, PyObject *arg) {
    static const char digits[] = "0123456789abcdef";
    unsigned long long v = PyLong_AsUnsignedLongLong(arg);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    char out[16];
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[v & 15];
        v >>= 4;
    }
    return PyBytes_FromStringAndSize(out, 16);
}

static PyMethodDef methods[] = {
    {"hash64", (PyCFunction)hash64, METH_O,
     "hash64(data) -> int\n\nThe ring position of `data`: FNV-1a 64 then murmur3's fmix64."},
    {"ring_index", (PyCFunction)(void (*)(void))ring_index, METH_FASTCALL,
     "ring_index(points, key) -> int\n\nWhere hash64(key) goes among `points` (sorted "
     "64-bit numbers, packed in the machine's order): the index of the first >= it."},
    {"hex16", (PyCFunction)hex16, METH_O,
     "hex16(n) -> bytes\n\nA 64-bit number as 16 lower-case hex digits."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ingress.filters.ringhash",
    "The hash ring's hash in C (ingress/filters/ringhash.py is the reference).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_ringhash(void) { return scan_module(&module); }
