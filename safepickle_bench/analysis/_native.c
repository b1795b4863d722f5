/* Compiled fast paths of the static analyzer: a pickle stream reader and a zip central-directory reader.
 *
 * Both work on bytes only: nothing here imports, looks up or calls anything a pickle names.
 *
 * read_stream() simulates one well-formed pickle stream made of the common opcodes exactly as the pure-Python
 * engine in symbolic.py does (same Global/Obj values, same import and call records, same counts). It gives up,
 * returning None with nothing recorded anywhere, at the first opcode it does not handle, any anomaly, a limit, or
 * a call with semantics of its own; the Python engine then reads the stream from the start and is the reference
 * (tests/test_native_reader.py compares both on every input the fast path answers).
 *
 * zip_directory() parses the records of a zip central directory into tuples.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* ---- configuration handed over by symbolic.py at import ---------------------------------------------- */

typedef struct {
    PyTypeObject *type;
    Py_ssize_t off[24];
    int n;
} RecordType;

static RecordType R_GLOBAL;   /* module, name, qual */
static RecordType R_OBJ;      /* callable, args, state, kind, extra */
static RecordType R_CALL;     /* callable, opcode, offset, _raw */
static RecordType R_IMPORT;   /* module, name, opcode, offset */
static RecordType R_STREAM;   /* the 20 fields of result.Stream, in order */
static RecordType R_RUN;      /* stream, value, persistent_ids, extra_streams, file_end, joblib_arrays */
static PyObject *DROP_BIG;    /* symbolic._drop_big_references(calls) */
static PyObject *ARG_READERS; /* tuple of 256: opcodes.ARG_READER (text arguments of protocol 0 opcodes) */

static PyObject *SPECIAL;           /* dict qual -> int */
static PyObject *JOBLIB_WRAPPERS;   /* frozenset of quals */
static PyObject *NAME_MAPPING;      /* dict (module, name) -> (module, name) */
static PyObject *IMPORT_MAPPING;    /* dict module -> module */
static PyObject *DECODE_CALL;       /* decode_call(qual, args, max_out) */
static PyObject *TOO_BIG;           /* decode_call's marker for an output over budget */
static PyTypeObject *UNKNOWN_TYPE;  /* type of the UNKNOWN value (a scalar key type) */
static PyObject *OPCODE_NAMES;      /* tuple of 256: opcode byte -> name (None when not an opcode) */
static unsigned char TALLY_KIND[256]; /* opcode byte -> 1 string literal, 2 memo put, 3 memo get, 0 other */
static unsigned char OPCODE_PROTO[256]; /* opcode byte -> protocol that introduced it */
static int CONFIGURED = 0;

static PyObject *S_EMPTY, *S_QMARK, *S_REDUCE, *S_NEWOBJ, *S_NEWOBJ_EX, *S_BUILD, *S_GLOBAL, *S_STACK_GLOBAL;
static PyObject *S_PERSID_CALLABLE, *S_PERSID_KIND, *S_INST, *S_OBJ;

#define BIG_LITERAL (1 << 16)
#define HIGHEST_PROTOCOL 5
#define MAX_MEMO_KEY (1 << 22)

/* The slot offsets of `type`'s fields named in the tuple `names` (looked up along the MRO, so inherited slots
 * count); the record is then built by new_record in that order. */
static int
record_offsets(RecordType *rt, PyObject *type, PyObject *names)
{
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (!PyType_Check(type) || n > 24) {
        PyErr_SetString(PyExc_TypeError, "a slotted record type of at most 24 fields expected");
        return -1;
    }
    rt->type = (PyTypeObject *)type;
    rt->n = (int)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *descr = PyObject_GetAttr(type, PyTuple_GET_ITEM(names, i));
        if (descr == NULL)
            return -1;
        if (!Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
            (((PyMemberDescrObject *)descr)->d_member->type != T_OBJECT_EX &&
             ((PyMemberDescrObject *)descr)->d_member->type != T_OBJECT)) {
            PyErr_Format(PyExc_TypeError, "%R is not a slot holding an object", PyTuple_GET_ITEM(names, i));
            Py_DECREF(descr);
            return -1;
        }
        rt->off[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
    }
    Py_INCREF(type); /* kept alive for the module's life */
    return 0;
}

/* record_offsets with the field names given as C strings. */
static int
record_offsets_of(RecordType *rt, PyObject *type, const char *format, ...)
{
    va_list va;
    va_start(va, format);
    PyObject *names = Py_VaBuildValue(format, va);
    va_end(va);
    if (names == NULL)
        return -1;
    int rc = record_offsets(rt, type, names);
    Py_DECREF(names);
    return rc;
}

/* A new instance of a slotted record type with its slots set (references stolen from `vals`, NULL kept unset). */
static PyObject *
new_record(RecordType *rt, PyObject **vals)
{
    PyObject *o = rt->type->tp_alloc(rt->type, 0);
    if (o == NULL) {
        for (int i = 0; i < rt->n; i++)
            Py_XDECREF(vals[i]);
        return NULL;
    }
    for (int i = 0; i < rt->n; i++)
        *(PyObject **)((char *)o + rt->off[i]) = vals[i];
    return o;
}

static inline PyObject *
slot_get(PyObject *o, RecordType *rt, int i)
{
    return *(PyObject **)((char *)o + rt->off[i]); /* borrowed, may be NULL */
}

static inline void
slot_set(PyObject *o, RecordType *rt, int i, PyObject *v)
{
    PyObject **p = (PyObject **)((char *)o + rt->off[i]);
    Py_XSETREF(*p, Py_NewRef(v));
}

static PyObject *
configure(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"Global", "Obj", "LazyCallRecord", "ImportRecord", "special", "joblib_wrappers",
                             "name_mapping", "import_mapping", "decode_call", "too_big", "unknown", "opcode_names",
                             "tally_kinds", "opcode_protos", "Stream", "stream_fields", "StreamRun", "run_fields",
                             "drop_big", "arg_readers", NULL};
    PyObject *g, *ob, *lcr, *ir, *sp, *jw, *nm, *im, *dc, *tb, *unk, *names, *stype, *sfields, *rtype, *rfields;
    PyObject *dropbig, *readers, *result = NULL;
    Py_buffer kinds, protos;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOO!OO!O!OOOO!y*y*OO!OO!OO!", kwlist, &g, &ob, &lcr, &ir,
                                     &PyDict_Type, &sp, &jw, &PyDict_Type, &nm, &PyDict_Type, &im, &dc, &tb, &unk,
                                     &PyTuple_Type, &names, &kinds, &protos, &stype, &PyTuple_Type, &sfields, &rtype,
                                     &PyTuple_Type, &rfields, &dropbig, &PyTuple_Type, &readers))
        return NULL;
    if (PyTuple_GET_SIZE(readers) != 256 || PyTuple_GET_SIZE(names) != 256 || kinds.len != 256 || protos.len != 256) {
        PyErr_SetString(PyExc_ValueError, "opcode tables must have 256 entries");
        goto done;
    }
    if (PyTuple_GET_SIZE(sfields) != 20 || PyTuple_GET_SIZE(rfields) != 6) {
        PyErr_SetString(PyExc_ValueError, "Stream has 20 fields and StreamRun 6");
        goto done;
    }
    if (record_offsets(&R_STREAM, stype, sfields) < 0 || record_offsets(&R_RUN, rtype, rfields) < 0 ||
        record_offsets_of(&R_GLOBAL, g, "(sss)", "module", "name", "qual") < 0 ||
        record_offsets_of(&R_OBJ, ob, "(sssss)", "callable", "args", "state", "kind", "extra") < 0 ||
        record_offsets_of(&R_CALL, lcr, "(ssss)", "callable", "opcode", "offset", "_raw") < 0 ||
        record_offsets_of(&R_IMPORT, ir, "(ssss)", "module", "name", "opcode", "offset") < 0)
        goto done;
    memcpy(TALLY_KIND, kinds.buf, 256);
    memcpy(OPCODE_PROTO, protos.buf, 256);
    Py_XSETREF(OPCODE_NAMES, Py_NewRef(names));
    Py_XSETREF(ARG_READERS, Py_NewRef(readers));
    Py_XSETREF(DROP_BIG, Py_NewRef(dropbig));
    Py_XSETREF(SPECIAL, Py_NewRef(sp));
    Py_XSETREF(JOBLIB_WRAPPERS, Py_NewRef(jw));
    Py_XSETREF(NAME_MAPPING, Py_NewRef(nm));
    Py_XSETREF(IMPORT_MAPPING, Py_NewRef(im));
    Py_XSETREF(DECODE_CALL, Py_NewRef(dc));
    Py_XSETREF(TOO_BIG, Py_NewRef(tb));
    UNKNOWN_TYPE = Py_TYPE(unk);
    Py_INCREF(UNKNOWN_TYPE);
    CONFIGURED = 1;
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&kinds);
    PyBuffer_Release(&protos);
    return result;
}


/* ---- opcode tally and container nesting (shared by read_stream and the module functions) ------------------ */

/* (opcode name -> count, string literals, memo puts, memo gets, highest protocol) of an opcode sequence: the dict
 * in first-seen order below 4096 opcodes, else in opcode byte order (as symbolic._tally). */
static PyObject *
tally_seq(const unsigned char *d, Py_ssize_t n, int want_protocol)
{
    Py_ssize_t counts[256] = {0}, kinds[4] = {0};
    unsigned char order[256];
    int norder = 0, top = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (counts[d[i]]++ == 0)
            order[norder++] = d[i];
    }
    if (n >= 4096) {
        norder = 0;
        for (int c = 0; c < 256; c++)
            if (counts[c])
                order[norder++] = (unsigned char)c;
    }
    PyObject *dct = PyDict_New();
    if (dct == NULL)
        return NULL;
    for (int i = 0; i < norder; i++) {
        unsigned char c = order[i];
        kinds[TALLY_KIND[c] & 3] += counts[c];
        if (want_protocol && OPCODE_PROTO[c] > top)
            top = OPCODE_PROTO[c];
        PyObject *v = PyLong_FromSsize_t(counts[c]);
        if (v == NULL || PyDict_SetItem(dct, PyTuple_GET_ITEM(OPCODE_NAMES, c), v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(dct);
            return NULL;
        }
        Py_DECREF(v);
    }
    return Py_BuildValue("(Nnnni)", dct, kinds[1], kinds[2], kinds[3], top);
}

static inline int
is_container(PyObject *v)
{
    PyTypeObject *t = Py_TYPE(v);
    return t == &PyTuple_Type || t == &PyList_Type || t == &PySet_Type || t == &PyFrozenSet_Type ||
           t == &PyDict_Type;
}

typedef struct {
    PyObject *v; /* borrowed: the value graph stays alive during the walk and no Python code runs */
    Py_ssize_t depth;
} Todo;

/* symbolic._nesting: how deeply containers nest inside a value (LIFO walk, 5,000 steps, `cap`, cycle-safe);
 * -1 with an exception set on memory errors. */
static Py_ssize_t
nesting_of(PyObject *value, Py_ssize_t cap)
{
    Py_ssize_t best = 0, steps = 0, ntodo = 0, captodo = 64;
    Todo *todo = PyMem_Malloc(captodo * sizeof(Todo));
    /* seen: open addressing on pointers, grown at half load */
    Py_ssize_t capseen = 64, nseen = 0;
    PyObject **seen = PyMem_Calloc(capseen, sizeof(PyObject *));
    if (todo == NULL || seen == NULL)
        goto nomem;
    todo[ntodo++] = (Todo){value, 0};
    while (ntodo && steps < 5000) {
        Todo cur = todo[--ntodo];
        steps++;
        if (!is_container(cur.v))
            continue;
        size_t h = ((size_t)cur.v >> 4) * 0x9E3779B97F4A7C15ull;
        Py_ssize_t i = (Py_ssize_t)(h & (size_t)(capseen - 1));
        int found = 0;
        while (seen[i] != NULL) {
            if (seen[i] == cur.v) {
                found = 1;
                break;
            }
            i = (i + 1) & (capseen - 1);
        }
        if (found)
            continue;
        seen[i] = cur.v;
        if (++nseen * 2 > capseen) {
            Py_ssize_t ncap = capseen * 2;
            PyObject **ns = PyMem_Calloc(ncap, sizeof(PyObject *));
            if (ns == NULL)
                goto nomem;
            for (Py_ssize_t j = 0; j < capseen; j++) {
                if (seen[j] == NULL)
                    continue;
                size_t hj = ((size_t)seen[j] >> 4) * 0x9E3779B97F4A7C15ull;
                Py_ssize_t k = (Py_ssize_t)(hj & (size_t)(ncap - 1));
                while (ns[k] != NULL)
                    k = (k + 1) & (ncap - 1);
                ns[k] = seen[j];
            }
            PyMem_Free(seen);
            seen = ns;
            capseen = ncap;
        }
        Py_ssize_t d = cur.depth + 1;
        if (d > best)
            best = d;
        if (d >= cap)
            break;
        /* children, in iteration order, as the Python walk appends them */
        PyObject *t = cur.v;
        Py_ssize_t n;
        PyObject *it = NULL, *x;
        Py_ssize_t pos = 0, idx = 0;
        if (PyDict_CheckExact(t))
            n = PyDict_GET_SIZE(t);
        else if (PyTuple_CheckExact(t))
            n = PyTuple_GET_SIZE(t);
        else if (PyList_CheckExact(t))
            n = PyList_GET_SIZE(t);
        else {
            n = PySet_GET_SIZE(t);
            it = PyObject_GetIter(t);
            if (it == NULL)
                goto error;
        }
        for (;;) {
            if (PyDict_CheckExact(t)) {
                PyObject *k;
                if (!PyDict_Next(t, &pos, &k, &x))
                    break;
            } else if (PyTuple_CheckExact(t)) {
                if (idx >= PyTuple_GET_SIZE(t))
                    break;
                x = PyTuple_GET_ITEM(t, idx++);
            } else if (PyList_CheckExact(t)) {
                if (idx >= PyList_GET_SIZE(t))
                    break;
                x = PyList_GET_ITEM(t, idx++);
            } else {
                x = PyIter_Next(it);
                if (x == NULL)
                    break;
                Py_DECREF(x); /* the set keeps it alive */
            }
            if (!is_container(x))
                continue;
            if (ntodo == captodo) {
                Py_ssize_t ncap = captodo * 2;
                Todo *nt = PyMem_Realloc(todo, ncap * sizeof(Todo));
                if (nt == NULL) {
                    Py_XDECREF(it);
                    goto nomem;
                }
                todo = nt;
                captodo = ncap;
            }
            todo[ntodo++] = (Todo){x, d};
        }
        (void)n;
        Py_XDECREF(it);
        if (PyErr_Occurred())
            goto error;
    }
    PyMem_Free(todo);
    PyMem_Free(seen);
    return best;
nomem:
    PyErr_NoMemory();
error:
    PyMem_Free(todo);
    PyMem_Free(seen);
    return -1;
}

/* ---- the stream reader ------------------------------------------------------------------------------- */

typedef struct {
    PyObject **items;
    Py_ssize_t len, cap;
} Stack;

typedef struct {
    const unsigned char *d;
    Py_ssize_t end;
    Stack st;
    Py_ssize_t *marks;
    Py_ssize_t nmarks, capmarks;
    Py_ssize_t fence, maxd, max_marks;
    PyObject **memo;
    Py_ssize_t memo_cap, memo_count;
    PyObject *imports, *calls, *strings, *pids;
    Py_ssize_t max_lits, max_chars;
    int proto, first_proto;
    long long room;   /* decoding budget left */
    long long max_decompressed;
    int big_seen;
} Reader;

/* Outcome of an opcode handler: 0 go on, 1 give up (hand the stream to the Python engine), -1 a real error. */
#define GO 0
#define GIVE_UP 1
#define ERR -1

static int
push(Reader *r, PyObject *v) /* steals v (NULL: error) */
{
    if (v == NULL)
        return ERR;
    if (r->st.len == r->st.cap) {
        Py_ssize_t cap = r->st.cap ? r->st.cap * 2 : 64;
        PyObject **n = PyMem_Realloc(r->st.items, cap * sizeof(PyObject *));
        if (n == NULL) {
            Py_DECREF(v);
            PyErr_NoMemory();
            return ERR;
        }
        r->st.items = n;
        r->st.cap = cap;
    }
    r->st.items[r->st.len++] = v;
    if (r->st.len > r->maxd)
        r->maxd = r->st.len;
    return GO;
}

#define ABOVE(r) ((r)->st.len - (r)->fence)
#define TOP(r) ((r)->st.items[(r)->st.len - 1])

static PyObject *
pop(Reader *r) /* new reference; caller checked ABOVE(r) >= 1 */
{
    return r->st.items[--r->st.len];
}

/* Pop down to the last MARK: the items as a new list (or tuple); GIVE_UP when there is no MARK. */
static int
popmark(Reader *r, PyObject **out, int as_tuple)
{
    if (r->nmarks > r->max_marks)
        r->max_marks = r->nmarks;
    if (r->nmarks == 0)
        return GIVE_UP;
    Py_ssize_t k = r->marks[--r->nmarks];
    r->fence = r->nmarks ? r->marks[r->nmarks - 1] : 0;
    Py_ssize_t n = r->st.len - k;
    PyObject *items = as_tuple ? PyTuple_New(n) : PyList_New(n);
    if (items == NULL)
        return ERR;
    for (Py_ssize_t i = 0; i < n; i++) { /* references move to the new container */
        if (as_tuple)
            PyTuple_SET_ITEM(items, i, r->st.items[k + i]);
        else
            PyList_SET_ITEM(items, i, r->st.items[k + i]);
    }
    r->st.len = k;
    *out = items;
    return GO;
}

/* The types the engine hashes without inspection (its _SCALAR_KEYS). */
static inline int
scalar_key(PyObject *k)
{
    PyTypeObject *t = Py_TYPE(k);
    return t == &PyUnicode_Type || t == &PyLong_Type || t == &PyBytes_Type || t == &PyFloat_Type ||
           t == &PyBool_Type || k == Py_None || t == R_GLOBAL.type || t == R_OBJ.type || t == UNKNOWN_TYPE;
}

static int
note_str(Reader *r, PyObject *s)
{
    if (PyList_GET_SIZE(r->strings) >= r->max_lits)
        return GO;
    PyObject *kept;
    if (PyUnicode_CheckExact(s)) {
        kept = PyUnicode_Substring(s, 0, r->max_chars);
    } else { /* bytes or bytearray: kept as latin-1 text */
        const char *b = PyBytes_CheckExact(s) ? PyBytes_AS_STRING(s) : PyByteArray_AS_STRING(s);
        Py_ssize_t n = PyBytes_CheckExact(s) ? PyBytes_GET_SIZE(s) : PyByteArray_GET_SIZE(s);
        kept = PyUnicode_DecodeLatin1(b, n < r->max_chars ? n : r->max_chars, NULL);
    }
    if (kept == NULL)
        return ERR;
    int rc = PyList_Append(r->strings, kept);
    Py_DECREF(kept);
    return rc < 0 ? ERR : GO;
}

static PyObject *
make_global(PyObject *module, PyObject *name) /* borrowed args */
{
    PyObject *qual;
    if (PyUnicode_GET_LENGTH(module) == 1 && PyUnicode_READ_CHAR(module, 0) == '?')
        qual = Py_NewRef(S_QMARK);
    else if (PyUnicode_GET_LENGTH(name) > 0)
        qual = PyUnicode_FromFormat("%U.%U", module, name);
    else
        qual = Py_NewRef(module);
    if (qual == NULL)
        return NULL;
    PyObject *vals[3] = {Py_NewRef(module), Py_NewRef(name), qual};
    return new_record(&R_GLOBAL, vals);
}

static PyObject *
make_obj(PyObject *callable, PyObject *args, PyObject *kind) /* borrowed args */
{
    PyObject *vals[5] = {Py_NewRef(callable), Py_NewRef(args), Py_NewRef(Py_None), Py_NewRef(kind),
                         Py_NewRef(Py_None)};
    return new_record(&R_OBJ, vals);
}

static int
add_call(Reader *r, PyObject *qual, PyObject *opname, Py_ssize_t offset, PyObject *raw)
{
    PyObject *off = PyLong_FromSsize_t(offset);
    if (off == NULL)
        return ERR;
    PyObject *vals[4] = {Py_NewRef(qual), Py_NewRef(opname), off, Py_NewRef(raw)};
    PyObject *rec = new_record(&R_CALL, vals);
    if (rec == NULL)
        return ERR;
    int rc = PyList_Append(r->calls, rec);
    Py_DECREF(rec);
    return rc < 0 ? ERR : GO;
}

/* find_class's protocol 2 name mapping, then an ImportRecord and a Global pushed on the stack. */
static int
do_import(Reader *r, PyObject *module, PyObject *name, PyObject *opname, Py_ssize_t offset) /* borrowed */
{
    PyObject *m = Py_NewRef(module), *n = Py_NewRef(name);
    if (r->proto < 3) {
        PyObject *key = PyTuple_Pack(2, m, n);
        if (key == NULL)
            goto error;
        PyObject *mapped = PyDict_GetItemWithError(NAME_MAPPING, key);
        Py_DECREF(key);
        if (mapped != NULL) {
            if (!PyTuple_Check(mapped) || PyTuple_GET_SIZE(mapped) != 2)
                goto give_up;
            Py_SETREF(m, Py_NewRef(PyTuple_GET_ITEM(mapped, 0)));
            Py_SETREF(n, Py_NewRef(PyTuple_GET_ITEM(mapped, 1)));
        } else if (PyErr_Occurred()) {
            goto error;
        } else {
            PyObject *mm = PyDict_GetItemWithError(IMPORT_MAPPING, m);
            if (mm != NULL)
                Py_SETREF(m, Py_NewRef(mm));
            else if (PyErr_Occurred())
                goto error;
        }
        if (!PyUnicode_CheckExact(m) || !PyUnicode_CheckExact(n))
            goto give_up;
    }
    PyObject *off = PyLong_FromSsize_t(offset);
    if (off == NULL)
        goto error;
    PyObject *vals[4] = {Py_NewRef(m), Py_NewRef(n), Py_NewRef(opname), off};
    PyObject *rec = new_record(&R_IMPORT, vals);
    if (rec == NULL)
        goto error;
    int rc = PyList_Append(r->imports, rec);
    Py_DECREF(rec);
    if (rc < 0)
        goto error;
    rc = push(r, make_global(m, n));
    Py_DECREF(m);
    Py_DECREF(n);
    return rc;
give_up:
    Py_DECREF(m);
    Py_DECREF(n);
    return GIVE_UP;
error:
    Py_DECREF(m);
    Py_DECREF(n);
    return ERR;
}

/* The engine's qual_of for the values this reader produces; NULL (no error set) when it must give up. */
static PyObject *
qual_of(PyObject *v) /* borrowed result */
{
    if (Py_IS_TYPE(v, R_GLOBAL.type))
        return slot_get(v, &R_GLOBAL, 2);
    if (Py_IS_TYPE(v, R_OBJ.type)) {
        PyObject *kind = slot_get(v, &R_OBJ, 3);
        if (kind == NULL || !PyUnicode_CheckExact(kind))
            return NULL;
        if (PyUnicode_GET_LENGTH(kind) == 0 || PyUnicode_Compare(kind, S_PERSID_KIND) == 0)
            return S_QMARK;
        return NULL; /* attr, attrgetter, methodcaller, partial: the engine's own semantics */
    }
    if (PyObject_TypeCheck(v, R_GLOBAL.type) || PyObject_TypeCheck(v, R_OBJ.type))
        return NULL;
    return S_QMARK; /* a literal */
}

/* REDUCE / NEWOBJ / NEWOBJ_EX: the engine's call() for the cases it handles without semantics of its own. */
static int
do_call(Reader *r, PyObject *fn, PyObject *args, PyObject *opname, Py_ssize_t offset) /* steals fn, args */
{
    int rc = GIVE_UP;
    PyObject *qual = qual_of(fn);
    if (qual == NULL)
        goto done;
    long special = 0;
    if (Py_IS_TYPE(fn, R_GLOBAL.type)) {
        PyObject *sp = PyDict_GetItemWithError(SPECIAL, qual);
        if (sp == NULL && PyErr_Occurred()) {
            rc = ERR;
            goto done;
        }
        if (sp != NULL) {
            special = PyLong_AsLong(sp);
            if (special != 9 && special != 14)
                goto done; /* getattr, partial, loads...: the engine */
        }
    }
    if (add_call(r, qual, opname, offset, args) < 0) {
        rc = ERR;
        goto done;
    }
    if (special == 14 && PyTuple_CheckExact(args) && PyTuple_GET_SIZE(args) > 0) {
        PyObject *q0 = qual_of(PyTuple_GET_ITEM(args, 0));
        if (q0 == NULL)
            goto done;
        rc = push(r, make_obj(q0, args, S_EMPTY));
        goto done;
    }
    if (special == 9) {
        PyObject *v;
        if (r->room > 0) {
            long long cap = r->max_decompressed < r->room ? r->max_decompressed : r->room;
            v = PyObject_CallFunction(DECODE_CALL, "OOL", qual, args, cap);
            if (v == NULL) {
                rc = ERR;
                goto done;
            }
        } else {
            v = Py_NewRef(TOO_BIG);
        }
        if (v == TOO_BIG) {
            Py_DECREF(v);
            goto done; /* an anomaly: the engine reports it */
        }
        if (v == Py_None) {
            Py_DECREF(v);
            rc = push(r, make_obj(qual, args, S_EMPTY));
            goto done;
        }
        Py_ssize_t n = PyObject_Length(v);
        if (n < 0) {
            Py_DECREF(v);
            rc = ERR;
            goto done;
        }
        r->room -= n;
        if (n > BIG_LITERAL)
            r->big_seen = 1;
        rc = push(r, v);
        goto done;
    }
    rc = push(r, make_obj(qual, args, S_EMPTY));
done:
    Py_DECREF(fn);
    Py_DECREF(args);
    return rc;
}

static int
memo_put(Reader *r, size_t key)
{
    if (ABOVE(r) < 1 || key >= MAX_MEMO_KEY)
        return GIVE_UP;
    if ((Py_ssize_t)key >= r->memo_cap) {
        Py_ssize_t cap = r->memo_cap ? r->memo_cap : 256;
        while (cap <= (Py_ssize_t)key)
            cap *= 2;
        PyObject **n = PyMem_Realloc(r->memo, cap * sizeof(PyObject *));
        if (n == NULL) {
            PyErr_NoMemory();
            return ERR;
        }
        memset(n + r->memo_cap, 0, (cap - r->memo_cap) * sizeof(PyObject *));
        r->memo = n;
        r->memo_cap = cap;
    }
    PyObject *old = r->memo[key];
    if (old == NULL)
        r->memo_count++;
    r->memo[key] = Py_NewRef(TOP(r));
    Py_XDECREF(old);
    return GO;
}

static int
memo_get(Reader *r, size_t key)
{
    if ((Py_ssize_t)key >= r->memo_cap || r->memo[key] == NULL)
        return GIVE_UP; /* memo_missing: an anomaly */
    return push(r, Py_NewRef(r->memo[key]));
}

/* SETITEMS/SETITEM/DICT on a dict target: every key a scalar, else give up (the engine inspects such keys). */
static int
set_items(PyObject *target, PyObject *const *items, Py_ssize_t n)
{
    if (n & 1)
        return GIVE_UP; /* odd number of items: an anomaly */
    if (!PyDict_CheckExact(target))
        return GO;
    for (Py_ssize_t i = 0; i < n; i += 2)
        if (!scalar_key(items[i]))
            return GIVE_UP;
    for (Py_ssize_t i = 0; i < n; i += 2)
        if (PyDict_SetItem(target, items[i], items[i + 1]) < 0)
            return ERR;
    return GO;
}

static inline uint32_t
u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t
u64le(const unsigned char *p)
{
    return (uint64_t)u32le(p) | ((uint64_t)u32le(p + 4) << 32);
}

static double
monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Push a text literal of n bytes at p (UTF-8, surrogatepass); GIVE_UP on undecodable bytes (an anomaly). */
static int
push_text(Reader *r, const unsigned char *p, Py_ssize_t n)
{
    PyObject *s = PyUnicode_DecodeUTF8((const char *)p, n, "surrogatepass");
    if (s == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return GIVE_UP;
        }
        return ERR;
    }
    if (note_str(r, s) < 0) {
        Py_DECREF(s);
        return ERR;
    }
    return push(r, s);
}

static int
push_bytes(Reader *r, const unsigned char *p, Py_ssize_t n, int as_bytearray)
{
    PyObject *b = as_bytearray ? PyByteArray_FromStringAndSize((const char *)p, n)
                               : PyBytes_FromStringAndSize((const char *)p, n);
    if (b == NULL)
        return ERR;
    if (note_str(r, b) < 0) {
        Py_DECREF(b);
        return ERR;
    }
    return push(r, b);
}

/* A literal whose unsigned little-endian length of `width` bytes (1, 4 or 8) follows the opcode at p: where its
 * bytes start and how many; GIVE_UP when it runs past the end (truncated: an anomaly). */
static int
sized_literal(Reader *r, Py_ssize_t p, int width, Py_ssize_t *at, Py_ssize_t *len)
{
    if (r->end - p < width)
        return GIVE_UP;
    const unsigned char *h = r->d + p;
    uint64_t n = width == 1 ? h[0] : width == 4 ? u32le(h) : u64le(h);
    if (n > (uint64_t)(r->end - p - width))
        return GIVE_UP;
    if (n + (uint64_t)width > BIG_LITERAL)
        r->big_seen = 1;
    *at = p + width;
    *len = (Py_ssize_t)n;
    return GO;
}

/* A GLOBAL line: strict UTF-8, not empty; GIVE_UP otherwise (an anomaly). */
static int
read_line(Reader *r, Py_ssize_t *pos, PyObject **out)
{
    const unsigned char *start = r->d + *pos;
    const unsigned char *nl = memchr(start, '\n', r->end - *pos);
    if (nl == NULL || nl == start)
        return GIVE_UP;
    PyObject *s = PyUnicode_DecodeUTF8((const char *)start, nl - start, "strict");
    if (s == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return GIVE_UP;
        }
        return ERR;
    }
    *pos = (nl - r->d) + 1;
    *out = s;
    return GO;
}

static void
reader_clear(Reader *r)
{
    for (Py_ssize_t i = 0; i < r->st.len; i++)
        Py_DECREF(r->st.items[i]);
    PyMem_Free(r->st.items);
    PyMem_Free(r->marks);
    for (Py_ssize_t i = 0; i < r->memo_cap; i++)
        Py_XDECREF(r->memo[i]);
    PyMem_Free(r->memo);
    Py_XDECREF(r->imports);
    Py_XDECREF(r->calls);
    Py_XDECREF(r->strings);
    Py_XDECREF(r->pids);
}

#define NEED(k)                      \
    do {                             \
        if (r->end - p < (k))        \
            goto give_up;            \
    } while (0)
#define CHECK(expr)                  \
    do {                             \
        int rc_ = (expr);            \
        if (rc_ == ERR)              \
            goto error;              \
        if (rc_ == GIVE_UP)          \
            goto give_up;            \
    } while (0)

PyDoc_STRVAR(read_stream_doc,
"read_stream(data, start, end, location, nested_depth, max_opcodes, max_stack_depth, max_lits, max_chars,\n"
"            max_int_digits, decode_budget, max_decompressed, deadline)\n"
"--\n\n"
"Simulate one pickle stream of `data` from `start`; None when the Python engine must read it.\n\n"
"Returns a symbolic.StreamRun (decode_budget[0] lowered by what decoding calls produced), or None with\n"
"nothing changed when the Python engine must read the stream.");

static PyObject *
read_stream(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    Py_ssize_t start, end, nested_depth, max_ops, max_stack, max_lits, max_chars, max_digits;
    long long room, max_decompressed;
    double deadline;
    PyObject *data_obj, *location, *budget;
    if (!CONFIGURED) {
        PyErr_SetString(PyExc_RuntimeError, "_native.configure() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OnnUnnnnnnO!Ld", &data_obj, &start, &end, &location, &nested_depth, &max_ops,
                          &max_stack, &max_lits, &max_chars, &max_digits, &PyList_Type, &budget, &max_decompressed,
                          &deadline))
        return NULL;
    if (PyObject_GetBuffer(data_obj, &buf, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyList_GET_SIZE(budget) < 1 || !PyLong_Check(PyList_GET_ITEM(budget, 0))) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_TypeError, "decode_budget must be a one-item list holding an int");
        return NULL;
    }
    room = PyLong_AsLongLong(PyList_GET_ITEM(budget, 0));
    if (room == -1 && PyErr_Occurred()) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    if (end > buf.len)
        end = buf.len;
    if (start < 0 || start >= end || max_ops <= 0 || max_stack < 0) {
        PyBuffer_Release(&buf);
        Py_RETURN_NONE;
    }
    Reader R;
    memset(&R, 0, sizeof(R));
    Reader *r = &R;
    r->d = (const unsigned char *)buf.buf;
    r->end = end;
    r->max_lits = max_lits;
    r->max_chars = max_chars;
    r->first_proto = -1;
    r->room = room;
    r->max_decompressed = max_decompressed;
    PyObject *result = NULL;
    PyObject *stop_value = NULL;
    unsigned char *seq = NULL;
    Py_ssize_t nseq = 0;
    Py_ssize_t frame_end = 0;
    int gc_was_on = 0;
    r->imports = PyList_New(0);
    r->calls = PyList_New(0);
    r->strings = PyList_New(0);
    r->pids = PyList_New(0);
    seq = PyMem_Malloc(end - start < max_ops ? end - start : max_ops);
    if (!r->imports || !r->calls || !r->strings || !r->pids || seq == NULL) {
        if (seq == NULL)
            PyErr_NoMemory();
        goto error;
    }
    if (end - start > 4096 && PyGC_IsEnabled()) { /* many long-lived containers: no collections meanwhile */
        PyGC_Disable();
        gc_was_on = 1;
    }
    const unsigned char *d = r->d;
    Py_ssize_t pos = start;
    for (;;) {
        if (pos >= end)
            goto give_up; /* no STOP: the engine reports it */
        if (nseq >= max_ops || r->st.len > max_stack)
            goto give_up; /* a limit: the engine reports it */
        if ((nseq & 4095) == 4095 && monotonic() > deadline)
            goto give_up;
        unsigned char code = d[pos];
        seq[nseq++] = code;
        Py_ssize_t p = pos + 1; /* after the opcode byte */
        Py_ssize_t off = pos;
        switch (code) {
        case 0x80: /* PROTO */
            NEED(1);
            if (d[p] > HIGHEST_PROTOCOL)
                goto give_up;
            r->proto = d[p];
            if (r->first_proto < 0)
                r->first_proto = d[p];
            pos = p + 1;
            break;
        case 0x95: { /* FRAME */
            NEED(8);
            uint64_t n = u64le(d + p);
            if (n > (uint64_t)(end - p - 8))
                goto give_up;
            frame_end = p + 8 + (Py_ssize_t)n;
            pos = p + 8;
            break;
        }
        case 0x2E: /* STOP */
            if (ABOVE(r) < 1)
                goto give_up;
            stop_value = pop(r);
            pos = p;
            goto stopped;
        case 0x28: /* MARK */
            if (r->nmarks == r->capmarks) {
                Py_ssize_t cap = r->capmarks ? r->capmarks * 2 : 16;
                Py_ssize_t *n = PyMem_Realloc(r->marks, cap * sizeof(Py_ssize_t));
                if (n == NULL) {
                    PyErr_NoMemory();
                    goto error;
                }
                r->marks = n;
                r->capmarks = cap;
            }
            r->fence = r->st.len;
            r->marks[r->nmarks++] = r->st.len;
            pos = p;
            break;
        case 0x30: /* POP */
            if (r->nmarks && r->marks[r->nmarks - 1] == r->st.len) {
                r->nmarks--;
                r->fence = r->nmarks ? r->marks[r->nmarks - 1] : 0;
            } else if (ABOVE(r) >= 1) {
                Py_DECREF(pop(r));
            } else {
                goto give_up;
            }
            pos = p;
            break;
        case 0x31: { /* POP_MARK */
            PyObject *items;
            CHECK(popmark(r, &items, 0));
            Py_DECREF(items);
            pos = p;
            break;
        }
        case 0x32: /* DUP */
            if (ABOVE(r) < 1)
                goto give_up;
            CHECK(push(r, Py_NewRef(TOP(r))));
            pos = p;
            break;
        case 0x4E: /* NONE */
            CHECK(push(r, Py_NewRef(Py_None)));
            pos = p;
            break;
        case 0x88: /* NEWTRUE */
            CHECK(push(r, Py_NewRef(Py_True)));
            pos = p;
            break;
        case 0x89: /* NEWFALSE */
            CHECK(push(r, Py_NewRef(Py_False)));
            pos = p;
            break;
        case 0x4B: /* BININT1 */
            NEED(1);
            CHECK(push(r, PyLong_FromLong(d[p])));
            pos = p + 1;
            break;
        case 0x4D: /* BININT2 */
            NEED(2);
            CHECK(push(r, PyLong_FromLong(d[p] | (d[p + 1] << 8))));
            pos = p + 2;
            break;
        case 0x4A: /* BININT */
            NEED(4);
            CHECK(push(r, PyLong_FromLong((long)(int32_t)u32le(d + p))));
            pos = p + 4;
            break;
        case 0x47: { /* BINFLOAT */
            NEED(8);
            double x = PyFloat_Unpack8((const char *)(d + p), 0);
            if (x == -1.0 && PyErr_Occurred())
                goto error;
            CHECK(push(r, PyFloat_FromDouble(x)));
            pos = p + 8;
            break;
        }
        case 0x8A: { /* LONG1 */
            NEED(1);
            Py_ssize_t n = d[p];
            NEED(1 + n);
            if (n > 8)
                goto give_up;
            uint64_t u = 0;
            for (Py_ssize_t i = 0; i < n; i++)
                u |= (uint64_t)d[p + 1 + i] << (8 * i);
            PyObject *v;
            if (n == 0) {
                v = PyLong_FromLong(0);
            } else if (n < 8 && (d[p + n] & 0x80)) {
                v = PyLong_FromLongLong((long long)(u | (~(uint64_t)0 << (8 * n))));
            } else if (n == 8 && (d[p + n] & 0x80)) {
                v = PyLong_FromLongLong((long long)u);
            } else if (n == 8) {
                v = PyLong_FromUnsignedLongLong(u);
            } else {
                v = PyLong_FromLongLong((long long)u);
            }
            CHECK(push(r, v));
            pos = p + 1 + n;
            break;
        }
        case 0x8C: /* SHORT_BINUNICODE */
        case 0x58: /* BINUNICODE */
        case 0x8D: /* BINUNICODE8 */
        case 0x43: /* SHORT_BINBYTES */
        case 0x42: /* BINBYTES */
        case 0x8E: /* BINBYTES8 */
        case 0x96: { /* BYTEARRAY8 */
            int width = (code == 0x8C || code == 0x43) ? 1 : (code == 0x58 || code == 0x42) ? 4 : 8;
            Py_ssize_t at, n;
            CHECK(sized_literal(r, p, width, &at, &n));
            if (code == 0x8C || code == 0x58 || code == 0x8D)
                CHECK(push_text(r, d + at, n));
            else
                CHECK(push_bytes(r, d + at, n, code == 0x96));
            pos = at + n;
            break;
        }
        case 0x55:   /* SHORT_BINSTRING */
        case 0x54: { /* BINSTRING */
            Py_ssize_t n, w = code == 0x55 ? 1 : 4;
            NEED(w);
            if (code == 0x55) {
                n = d[p];
            } else {
                int32_t sn = (int32_t)u32le(d + p);
                if (sn < 0)
                    goto give_up;
                n = sn;
            }
            NEED(w + n);
            if (n + w > BIG_LITERAL)
                r->big_seen = 1;
            PyObject *s = PyUnicode_DecodeLatin1((const char *)(d + p + w), n, NULL);
            if (s == NULL)
                goto error;
            if (note_str(r, s) < 0) {
                Py_DECREF(s);
                goto error;
            }
            CHECK(push(r, s));
            pos = p + w + n;
            break;
        }
        case 0x29: /* EMPTY_TUPLE */
            CHECK(push(r, PyTuple_New(0)));
            pos = p;
            break;
        case 0x5D: /* EMPTY_LIST */
            CHECK(push(r, PyList_New(0)));
            pos = p;
            break;
        case 0x7D: /* EMPTY_DICT */
            CHECK(push(r, PyDict_New()));
            pos = p;
            break;
        case 0x8F: /* EMPTY_SET */
            CHECK(push(r, PySet_New(NULL)));
            pos = p;
            break;
        case 0x74: { /* TUPLE */
            PyObject *t;
            CHECK(popmark(r, &t, 1));
            CHECK(push(r, t));
            pos = p;
            break;
        }
        case 0x85: { /* TUPLE1 */
            if (ABOVE(r) < 1)
                goto give_up;
            PyObject *t = PyTuple_New(1);
            if (t == NULL)
                goto error;
            PyTuple_SET_ITEM(t, 0, r->st.items[r->st.len - 1]);
            r->st.items[r->st.len - 1] = t;
            pos = p;
            break;
        }
        case 0x86:   /* TUPLE2 */
        case 0x87: { /* TUPLE3 */
            Py_ssize_t k = code == 0x86 ? 2 : 3;
            if (ABOVE(r) < k)
                goto give_up;
            PyObject *t = PyTuple_New(k);
            if (t == NULL)
                goto error;
            for (Py_ssize_t i = 0; i < k; i++)
                PyTuple_SET_ITEM(t, i, r->st.items[r->st.len - k + i]);
            r->st.len -= k;
            CHECK(push(r, t));
            pos = p;
            break;
        }
        case 0x6C: { /* LIST */
            PyObject *items;
            CHECK(popmark(r, &items, 0));
            CHECK(push(r, items));
            pos = p;
            break;
        }
        case 0x64: { /* DICT */
            PyObject *items;
            CHECK(popmark(r, &items, 0));
            PyObject *dct = PyDict_New();
            if (dct == NULL) {
                Py_DECREF(items);
                goto error;
            }
            int rc = set_items(dct, &PyList_GET_ITEM(items, 0), PyList_GET_SIZE(items));
            Py_DECREF(items);
            if (rc != GO) {
                Py_DECREF(dct);
                CHECK(rc);
            }
            CHECK(push(r, dct));
            pos = p;
            break;
        }
        case 0x61: { /* APPEND */
            if (ABOVE(r) < 2)
                goto give_up;
            PyObject *v = pop(r);
            PyObject *t = TOP(r);
            int rc = PyList_CheckExact(t) ? PyList_Append(t, v) : 0;
            Py_DECREF(v);
            if (rc < 0)
                goto error;
            pos = p;
            break;
        }
        case 0x65:   /* APPENDS */
        case 0x75:   /* SETITEMS */
        case 0x90: { /* ADDITEMS */
            PyObject *items;
            CHECK(popmark(r, &items, 0));
            if (ABOVE(r) < 1) {
                Py_DECREF(items);
                goto give_up;
            }
            PyObject *t = TOP(r);
            Py_ssize_t n = PyList_GET_SIZE(items);
            int rc = GO;
            if (code == 0x65) {
                if (PyList_CheckExact(t) && n)
                    rc = PyList_SetSlice(t, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, items) < 0 ? ERR : GO;
            } else if (code == 0x75) {
                rc = set_items(t, &PyList_GET_ITEM(items, 0), n);
            } else if (PySet_CheckExact(t)) {
                for (Py_ssize_t i = 0; i < n && rc == GO; i++)
                    rc = scalar_key(PyList_GET_ITEM(items, i)) ? GO : GIVE_UP;
                for (Py_ssize_t i = 0; i < n && rc == GO; i++)
                    rc = PySet_Add(t, PyList_GET_ITEM(items, i)) < 0 ? ERR : GO;
            }
            Py_DECREF(items);
            CHECK(rc);
            pos = p;
            break;
        }
        case 0x91: { /* FROZENSET */
            PyObject *items;
            CHECK(popmark(r, &items, 0));
            Py_ssize_t n = PyList_GET_SIZE(items);
            for (Py_ssize_t i = 0; i < n; i++)
                if (!scalar_key(PyList_GET_ITEM(items, i))) {
                    Py_DECREF(items);
                    goto give_up;
                }
            PyObject *fs = PyFrozenSet_New(items);
            Py_DECREF(items);
            CHECK(push(r, fs));
            pos = p;
            break;
        }
        case 0x73: { /* SETITEM */
            if (ABOVE(r) < 3)
                goto give_up;
            PyObject *pair[2] = {r->st.items[r->st.len - 2], r->st.items[r->st.len - 1]};
            int rc = set_items(r->st.items[r->st.len - 3], pair, 2);
            CHECK(rc);
            Py_DECREF(pop(r));
            Py_DECREF(pop(r));
            pos = p;
            break;
        }
        case 0x71: /* BINPUT */
            NEED(1);
            CHECK(memo_put(r, d[p]));
            pos = p + 1;
            break;
        case 0x72: /* LONG_BINPUT */
            NEED(4);
            CHECK(memo_put(r, u32le(d + p)));
            pos = p + 4;
            break;
        case 0x94: /* MEMOIZE */
            CHECK(memo_put(r, (size_t)r->memo_count));
            pos = p;
            break;
        case 0x68: /* BINGET */
            NEED(1);
            CHECK(memo_get(r, d[p]));
            pos = p + 1;
            break;
        case 0x6A: /* LONG_BINGET */
            NEED(4);
            CHECK(memo_get(r, u32le(d + p)));
            pos = p + 4;
            break;
        case 0x63: { /* GLOBAL */
            Py_ssize_t q = p;
            PyObject *module = NULL, *name = NULL;
            CHECK(read_line(r, &q, &module));
            int rc = read_line(r, &q, &name);
            if (rc != GO) {
                Py_DECREF(module);
                CHECK(rc);
            }
            rc = do_import(r, module, name, S_GLOBAL, off);
            Py_DECREF(module);
            Py_DECREF(name);
            CHECK(rc);
            pos = q;
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            if (ABOVE(r) < 2)
                goto give_up;
            PyObject *name = r->st.items[r->st.len - 1], *module = r->st.items[r->st.len - 2];
            if (!PyUnicode_CheckExact(module) || !PyUnicode_CheckExact(name))
                goto give_up;
            r->st.len -= 2;
            int rc = do_import(r, module, name, S_STACK_GLOBAL, off);
            Py_DECREF(module);
            Py_DECREF(name);
            CHECK(rc);
            pos = p;
            break;
        }
        case 0x52:   /* REDUCE */
        case 0x81: { /* NEWOBJ */
            if (ABOVE(r) < 2)
                goto give_up;
            PyObject *a = pop(r);
            PyObject *fn = pop(r);
            CHECK(do_call(r, fn, a, code == 0x52 ? S_REDUCE : S_NEWOBJ, off));
            pos = p;
            break;
        }
        case 0x92: { /* NEWOBJ_EX */
            if (ABOVE(r) < 3)
                goto give_up;
            PyObject *kwargs = pop(r);
            PyObject *a = pop(r);
            PyObject *cls = pop(r);
            if (PyDict_CheckExact(kwargs) && PyDict_GET_SIZE(kwargs) && PyTuple_CheckExact(a)) {
                Py_ssize_t n = PyTuple_GET_SIZE(a);
                PyObject *t = PyTuple_New(n + 1);
                if (t == NULL) {
                    Py_DECREF(kwargs);
                    Py_DECREF(a);
                    Py_DECREF(cls);
                    goto error;
                }
                for (Py_ssize_t i = 0; i < n; i++)
                    PyTuple_SET_ITEM(t, i, Py_NewRef(PyTuple_GET_ITEM(a, i)));
                PyTuple_SET_ITEM(t, n, kwargs);
                Py_SETREF(a, t);
            } else {
                Py_DECREF(kwargs);
            }
            CHECK(do_call(r, cls, a, S_NEWOBJ_EX, off));
            pos = p;
            break;
        }
        case 0x62: { /* BUILD */
            if (ABOVE(r) < 2)
                goto give_up;
            PyObject *inst = r->st.items[r->st.len - 2];
            if (!Py_IS_TYPE(inst, R_OBJ.type))
                goto give_up; /* BUILD on a module/class (attribute overwrite) or a literal: the engine */
            PyObject *kind = slot_get(inst, &R_OBJ, 3);
            PyObject *callable = slot_get(inst, &R_OBJ, 0);
            if (kind == NULL || callable == NULL || !PyUnicode_CheckExact(kind) ||
                !PyUnicode_CheckExact(callable))
                goto give_up;
            if (PyUnicode_GET_LENGTH(kind) && PyUnicode_Compare(kind, S_PERSID_KIND) != 0)
                goto give_up; /* partial and friends */
            int wrapped = PySet_Contains(JOBLIB_WRAPPERS, callable);
            if (wrapped < 0)
                goto error;
            if (wrapped)
                goto give_up; /* joblib array data follows: the engine */
            PyObject *state = r->st.items[r->st.len - 1];
            if (add_call(r, callable, S_BUILD, off, state) < 0)
                goto error;
            slot_set(inst, &R_OBJ, 2, state);
            Py_DECREF(pop(r));
            pos = p;
            break;
        }
        case 0x51: { /* BINPERSID */
            if (ABOVE(r) < 1)
                goto give_up;
            PyObject *pid = TOP(r);
            if (PyList_Append(r->pids, pid) < 0)
                goto error;
            PyObject *o = make_obj(S_PERSID_CALLABLE, pid, S_PERSID_KIND);
            if (o == NULL)
                goto error;
            r->st.items[r->st.len - 1] = o;
            Py_DECREF(pid);
            pos = p;
            break;
        }
        case 0x49:   /* INT */
        case 0x4C:   /* LONG */
        case 0x46:   /* FLOAT */
        case 0x53:   /* STRING */
        case 0x56:   /* UNICODE */
        case 0x70:   /* PUT */
        case 0x67:   /* GET */
        case 0x50:   /* PERSID */
        case 0x69: { /* INST */
            /* text arguments: decoded by the engine's own readers (opcodes.ARG_READER), any error -> the engine */
            PyObject *got = PyObject_CallFunction(PyTuple_GET_ITEM(ARG_READERS, code), "Onnn", data_obj, p, end,
                                                  max_digits);
            if (got == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_Exception))
                    goto error;
                PyErr_Clear();
                goto give_up; /* ArgError (truncated, bad argument) or a decoding error: an anomaly */
            }
            PyObject *arg = NULL;
            Py_ssize_t q = -1;
            if (PyTuple_Check(got) && PyTuple_GET_SIZE(got) == 2) {
                arg = PyTuple_GET_ITEM(got, 0);
                q = PyLong_AsSsize_t(PyTuple_GET_ITEM(got, 1));
            }
            if (arg == NULL || q < p || q > end) {
                Py_DECREF(got);
                if (PyErr_Occurred())
                    goto error;
                goto give_up;
            }
            Py_INCREF(arg);
            Py_DECREF(got);
            if (q - p > BIG_LITERAL)
                r->big_seen = 1;
            int rc = GO;
            if (code == 0x49 || code == 0x4C || code == 0x46) {
                rc = push(r, arg);
                arg = NULL;
            } else if (code == 0x53) { /* bytes kept as latin-1 text, as the engine does */
                PyObject *t = PyBytes_Check(arg)
                                  ? PyUnicode_DecodeLatin1(PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg), NULL)
                                  : NULL;
                if (t == NULL) {
                    rc = PyErr_Occurred() ? ERR : GIVE_UP;
                } else if ((rc = note_str(r, t)) == GO) {
                    rc = push(r, t);
                } else {
                    Py_DECREF(t);
                }
            } else if (code == 0x56) {
                if (!PyUnicode_CheckExact(arg))
                    rc = GIVE_UP;
                else if ((rc = note_str(r, arg)) == GO) {
                    rc = push(r, arg);
                    arg = NULL;
                }
            } else if (code == 0x70 || code == 0x67) {
                Py_ssize_t key = PyLong_Check(arg) ? PyLong_AsSsize_t(arg) : -1;
                if (key == -1 && PyErr_Occurred())
                    PyErr_Clear(); /* a huge key: the engine */
                if (key < 0)
                    rc = GIVE_UP;
                else
                    rc = code == 0x70 ? memo_put(r, (size_t)key) : memo_get(r, (size_t)key);
            } else if (code == 0x50) {
                if (PyList_Append(r->pids, arg) < 0) {
                    rc = ERR;
                } else {
                    rc = push(r, make_obj(S_PERSID_CALLABLE, arg, S_PERSID_KIND));
                }
            } else { /* INST: the marked items are the arguments of the class the two lines name */
                PyObject *items = NULL;
                if (!PyTuple_Check(arg) || PyTuple_GET_SIZE(arg) != 2 ||
                    !PyUnicode_CheckExact(PyTuple_GET_ITEM(arg, 0)) || !PyUnicode_CheckExact(PyTuple_GET_ITEM(arg, 1)))
                    rc = GIVE_UP;
                else
                    rc = popmark(r, &items, 1);
                if (rc == GO) {
                    rc = do_import(r, PyTuple_GET_ITEM(arg, 0), PyTuple_GET_ITEM(arg, 1), S_INST, off);
                    if (rc == GO)
                        rc = do_call(r, pop(r), items, S_INST, off);
                    else
                        Py_DECREF(items);
                }
            }
            Py_XDECREF(arg);
            CHECK(rc);
            pos = q;
            break;
        }
        case 0x6F: { /* OBJ */
            PyObject *items;
            CHECK(popmark(r, &items, 0));
            Py_ssize_t n = PyList_GET_SIZE(items);
            if (n == 0) {
                Py_DECREF(items);
                goto give_up; /* no class: an anomaly */
            }
            PyObject *cls = Py_NewRef(PyList_GET_ITEM(items, 0));
            PyObject *a = PyList_GetSlice(items, 1, n);
            Py_DECREF(items);
            PyObject *t = a == NULL ? NULL : PyList_AsTuple(a);
            Py_XDECREF(a);
            if (t == NULL) {
                Py_DECREF(cls);
                goto error;
            }
            CHECK(do_call(r, cls, t, S_OBJ, off));
            pos = p;
            break;
        }
        default:
            goto give_up; /* EXT, buffers, LONG4, unknown bytes */
        }
    }

stopped: {
    PyObject *seqb = PyBytes_FromStringAndSize((const char *)seq, nseq);
    if (seqb == NULL)
        goto error;
    PyObject *tallied = tally_seq(seq, nseq, r->first_proto < 0);
    if (tallied == NULL) {
        Py_DECREF(seqb);
        goto error;
    }
    Py_ssize_t nest = r->max_marks > r->nmarks ? r->max_marks : r->nmarks;
    if (is_container(stop_value)) {
        Py_ssize_t d = nesting_of(stop_value, 256);
        if (d < 0) {
            Py_DECREF(seqb);
            Py_DECREF(tallied);
            goto error;
        }
        if (d > nest)
            nest = d;
    }
    /* the Stream record, then the StreamRun, exactly as symbolic.read_native_stream documents */
    PyObject *counts = PyTuple_GET_ITEM(tallied, 0);
    long top_proto = PyLong_AsLong(PyTuple_GET_ITEM(tallied, 4));
    PyObject *anomalies = PyList_New(0), *extra = PyList_New(0), *room_obj = PyLong_FromLongLong(r->room);
    if (anomalies == NULL || extra == NULL || room_obj == NULL) {
        Py_XDECREF(anomalies);
        Py_XDECREF(extra);
        Py_XDECREF(room_obj);
        Py_DECREF(seqb);
        Py_DECREF(tallied);
        goto error;
    }
    PyObject *sv[20] = {
        Py_NewRef(location),
        PyLong_FromSsize_t(start),
        PyLong_FromSsize_t(pos),
        PyLong_FromLong(r->first_proto >= 0 ? r->first_proto : top_proto),
        PyBool_FromLong(r->first_proto >= 0),
        Py_NewRef(Py_True),
        PyLong_FromSsize_t(nseq),
        Py_NewRef(counts),
        seqb,
        Py_NewRef(r->imports),
        Py_NewRef(r->calls),
        Py_NewRef(r->strings),
        Py_NewRef(PyTuple_GET_ITEM(tallied, 1)),
        anomalies,
        PyLong_FromSsize_t(r->maxd > r->st.len ? r->maxd : r->st.len),
        PyLong_FromSsize_t(nest),
        Py_NewRef(PyTuple_GET_ITEM(tallied, 2)),
        Py_NewRef(PyTuple_GET_ITEM(tallied, 3)),
        PyLong_FromSsize_t(nested_depth),
        PyLong_FromLong(0),
    };
    Py_DECREF(tallied);
    int bad = 0;
    for (int i = 0; i < 20; i++)
        bad |= sv[i] == NULL;
    if (bad) {
        for (int i = 0; i < 20; i++)
            Py_XDECREF(sv[i]);
        Py_DECREF(extra);
        Py_DECREF(room_obj);
        goto error;
    }
    PyObject *stream = new_record(&R_STREAM, sv);
    if (stream == NULL) {
        Py_DECREF(extra);
        Py_DECREF(room_obj);
        goto error;
    }
    PyObject *rv[6] = {stream, stop_value, Py_NewRef(r->pids), extra,
                       PyLong_FromSsize_t(pos > frame_end ? pos : frame_end), PyLong_FromLong(0)};
    stop_value = NULL; /* moved into the run */
    if (rv[4] == NULL || rv[5] == NULL) {
        for (int i = 0; i < 6; i++)
            Py_XDECREF(rv[i]);
        Py_DECREF(room_obj);
        goto error;
    }
    result = new_record(&R_RUN, rv);
    if (result == NULL) {
        Py_DECREF(room_obj);
        goto error;
    }
    if (PyList_SetItem(budget, 0, room_obj) < 0) { /* steals room_obj */
        Py_CLEAR(result);
        goto error;
    }
    if (r->big_seen && PyList_GET_SIZE(r->calls)) {
        PyObject *dropped = PyObject_CallOneArg(DROP_BIG, r->calls);
        if (dropped == NULL) {
            Py_CLEAR(result);
            goto error;
        }
        Py_DECREF(dropped);
    }
    goto done;
}
give_up:
    if (PyErr_Occurred())
        goto error;
    result = Py_NewRef(Py_None);
    goto done;
error:
    result = NULL;
done:
    Py_XDECREF(stop_value);
    if (gc_was_on)
        PyGC_Enable();
    PyMem_Free(seq);
    reader_clear(r);
    PyBuffer_Release(&buf);
    return result;
}

/* ---- zip central directory ------------------------------------------------------------------------------ */

PyDoc_STRVAR(zip_directory_doc,
"zip_directory(data, cd_start, cd_end, limit)\n"
"--\n\n"
"Parse the central directory records in data[cd_start:cd_end], reading no byte at or past `limit`.\n\n"
"Returns (entries, bad, zip64) where entries is a list of (name, method, flags, crc, csize, usize,\n"
"header_offset) tuples (name decoded as UTF-8 when flag bit 11 is set, else cp437, with errors replaced), bad\n"
"is the offset (relative to cd_start) of the first record that is not a central directory header, or -1, and\n"
"zip64 lists (index, extra field) for the entries with a size or offset of 0xFFFFFFFF.");

static PyObject *
decode_name(const unsigned char *p, Py_ssize_t n, int utf8)
{
    int ascii = 1;
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i] & 0x80) {
            ascii = 0;
            break;
        }
    if (ascii)
        return PyUnicode_DecodeASCII((const char *)p, n, "replace");
    return PyUnicode_Decode((const char *)p, n, utf8 ? "utf-8" : "cp437", "replace");
}

static PyObject *
zip_directory(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    Py_ssize_t a, b, limit;
    if (!PyArg_ParseTuple(args, "y*nnn", &buf, &a, &b, &limit))
        return NULL;
    if (limit > buf.len)
        limit = buf.len;
    if (b > limit)
        b = limit;
    if (a < 0)
        a = 0;
    const unsigned char *d = buf.buf;
    PyObject *entries = PyList_New(0);
    PyObject *zip64 = PyList_New(0);
    if (entries == NULL || zip64 == NULL) {
        Py_XDECREF(entries);
        Py_XDECREF(zip64);
        PyBuffer_Release(&buf);
        return NULL;
    }
    Py_ssize_t pos = a, bad = -1;
    while (pos < b) {
        if (limit - pos < 46 || memcmp(d + pos, "PK\x01\x02", 4) != 0) {
            bad = pos - a;
            break;
        }
        const unsigned char *h = d + pos;
        unsigned flags = h[8] | (h[9] << 8), method = h[10] | (h[11] << 8);
        uint32_t crc = u32le(h + 16), csize = u32le(h + 20), usize = u32le(h + 24);
        Py_ssize_t nlen = h[28] | (h[29] << 8), elen = h[30] | (h[31] << 8), clen = h[32] | (h[33] << 8);
        uint32_t offset = u32le(h + 42);
        Py_ssize_t nstart = pos + 46;
        Py_ssize_t nend = nstart + nlen < limit ? nstart + nlen : limit;
        Py_ssize_t eend = nstart + nlen + elen < limit ? nstart + nlen + elen : limit;
        if (eend < nend)
            eend = nend;
        /* names and extras are clamped to the readable window, as reading a window of it does */
        PyObject *name = decode_name(d + nstart, nend - nstart, flags & 0x800);
        if (name == NULL)
            goto error;
        if (csize == 0xFFFFFFFFu || usize == 0xFFFFFFFFu || offset == 0xFFFFFFFFu) {
            PyObject *z = Py_BuildValue("(ny#)", PyList_GET_SIZE(entries), (const char *)(d + nend), eend - nend);
            if (z == NULL || PyList_Append(zip64, z) < 0) {
                Py_XDECREF(z);
                Py_DECREF(name);
                goto error;
            }
            Py_DECREF(z);
        }
        PyObject *t = Py_BuildValue("(NIIkkkk)", name, method, flags, (unsigned long)crc, (unsigned long)csize,
                                    (unsigned long)usize, (unsigned long)offset);
        if (t == NULL)
            goto error;
        int rc = PyList_Append(entries, t);
        Py_DECREF(t);
        if (rc < 0)
            goto error;
        pos += 46 + nlen + elen + clen;
    }
    PyBuffer_Release(&buf);
    return Py_BuildValue("(NnN)", entries, bad, zip64);
error:
    Py_DECREF(entries);
    Py_DECREF(zip64);
    PyBuffer_Release(&buf);
    return NULL;
}

/* ---- opcode tally ----------------------------------------------------------------------------------------- */

PyDoc_STRVAR(tally_doc,
"tally(seq, want_protocol)\n"
"--\n\n"
"Return (opcode name -> count, string literals, memo puts, memo gets, highest protocol) of an opcode sequence.\n\n"
"The dict is in first-seen order below 4096 opcodes, else in opcode byte order (as symbolic._tally).");

static PyObject *
tally(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    int want_protocol;
    if (OPCODE_NAMES == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_native.configure() was not called");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*p", &buf, &want_protocol))
        return NULL;
    PyObject *out = tally_seq(buf.buf, buf.len, want_protocol);
    PyBuffer_Release(&buf);
    return out;
}

PyDoc_STRVAR(nesting_doc,
"nesting(value, cap=256)\n"
"--\n\n"
"Return how deeply containers nest inside a value (bounded, cycle-safe; as symbolic._nesting).");

static PyObject *
nesting(PyObject *self, PyObject *args)
{
    PyObject *value;
    Py_ssize_t cap = 256;
    if (!PyArg_ParseTuple(args, "O|n", &value, &cap))
        return NULL;
    Py_ssize_t n = nesting_of(value, cap);
    return n < 0 ? NULL : PyLong_FromSsize_t(n);
}


/* ---- hashed opcode n-grams ----------------------------------------------------------------------------------- */

PyDoc_STRVAR(ngram_counts_doc,
"ngram_counts(seq, buckets, mult, shift, tri_salt)\n"
"--\n\n"
"Return (bigram counts, trigram counts) of an opcode sequence as bytes of `buckets` native int64 each.\n\n"
"Key of a bigram: (a << 8) | b; of a trigram: ((a << 16) | (b << 8) | c) ^ tri_salt; bucket: (key * mult mod 2**64)\n"
">> shift (features.ngrams' Fibonacci hashing).");

static PyObject *
ngram_counts(PyObject *self, PyObject *args)
{
    Py_buffer buf;
    Py_ssize_t buckets;
    unsigned long long mult, salt;
    int shift;
    if (!PyArg_ParseTuple(args, "y*nKiK", &buf, &buckets, &mult, &shift, &salt))
        return NULL;
    if (buckets <= 0 || buckets > 65536 || shift < 1 || shift > 63 || ((uint64_t)1 << (64 - shift)) > (uint64_t)buckets) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "buckets must hold every value of the top 64 - shift bits");
        return NULL;
    }
    PyObject *bi = PyBytes_FromStringAndSize(NULL, buckets * 8), *tri = PyBytes_FromStringAndSize(NULL, buckets * 8);
    if (bi == NULL || tri == NULL) {
        Py_XDECREF(bi);
        Py_XDECREF(tri);
        PyBuffer_Release(&buf);
        return NULL;
    }
    int64_t *b = (int64_t *)PyBytes_AS_STRING(bi), *t = (int64_t *)PyBytes_AS_STRING(tri);
    memset(b, 0, buckets * 8);
    memset(t, 0, buckets * 8);
    const unsigned char *d = buf.buf;
    Py_ssize_t n = buf.len;
    for (Py_ssize_t i = 0; i + 1 < n; i++) {
        uint64_t key = ((uint64_t)d[i] << 8) | d[i + 1];
        b[(key * mult) >> shift]++;
        if (i + 2 < n) {
            uint64_t k3 = ((key << 8) | d[i + 2]) ^ salt;
            t[(k3 * mult) >> shift]++;
        }
    }
    PyBuffer_Release(&buf);
    return Py_BuildValue("(NN)", bi, tri);
}

/* ---- torch tensor entries ---------------------------------------------------------------------------------- */

/* Whether `name` matches (^|/)(data|constants)/\d+$ (re.search, no flags): `$` also before a final newline. */
static int
is_tensor_entry(PyObject *name)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(name);
    int kind = PyUnicode_KIND(name);
    const void *data = PyUnicode_DATA(name);
    for (int strip = 0; strip < 2; strip++) {
        Py_ssize_t e = n - strip; /* candidate end of the match */
        if (strip && (n == 0 || PyUnicode_READ(kind, data, n - 1) != '\n'))
            break;
        Py_ssize_t i = e;
        while (i > 0 && Py_UNICODE_ISDECIMAL(PyUnicode_READ(kind, data, i - 1)))
            i--;
        if (i == e || i == 0 || PyUnicode_READ(kind, data, i - 1) != '/')
            continue;
        Py_ssize_t w = i - 1; /* the slash before the digits */
        static const char *const words[2] = {"data", "constants"};
        for (int k = 0; k < 2; k++) {
            Py_ssize_t len = (Py_ssize_t)strlen(words[k]);
            if (w < len)
                continue;
            int same = 1;
            for (Py_ssize_t j = 0; j < len && same; j++)
                same = PyUnicode_READ(kind, data, w - len + j) == (Py_UCS4)words[k][j];
            if (same && (w == len || PyUnicode_READ(kind, data, w - len - 1) == '/'))
                return 1;
        }
    }
    return 0;
}

PyDoc_STRVAR(entries_to_read_doc,
"entries_to_read(names, torch_like)\n"
"--\n\n"
"Return the indices of the zip entries a loader may unpickle: not directories (a trailing '/') and, when\n"
"`torch_like`, not tensor storages (names matching (^|/)(data|constants)/\\d+$).");

static PyObject *
entries_to_read(PyObject *self, PyObject *args)
{
    PyObject *names;
    int torch_like;
    if (!PyArg_ParseTuple(args, "O!p", &PyList_Type, &names, &torch_like))
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(names); i++) {
        PyObject *name = PyList_GET_ITEM(names, i);
        if (!PyUnicode_Check(name)) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_TypeError, "names must be str");
            return NULL;
        }
        Py_ssize_t n = PyUnicode_GET_LENGTH(name);
        if (n > 0 && PyUnicode_READ_CHAR(name, n - 1) == '/')
            continue;
        if (torch_like && is_tensor_entry(name))
            continue;
        PyObject *ix = PyLong_FromSsize_t(i);
        if (ix == NULL || PyList_Append(out, ix) < 0) {
            Py_XDECREF(ix);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(ix);
    }
    return out;
}

/* ---- module ----------------------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(**types_and_tables)\n--\n\nHand the record types and callable tables to the reader (once)."},
    {"read_stream", read_stream, METH_VARARGS, read_stream_doc},
    {"zip_directory", zip_directory, METH_VARARGS, zip_directory_doc},
    {"tally", tally, METH_VARARGS, tally_doc},
    {"nesting", nesting, METH_VARARGS, nesting_doc},
    {"ngram_counts", ngram_counts, METH_VARARGS, ngram_counts_doc},
    {"entries_to_read", entries_to_read, METH_VARARGS, entries_to_read_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_native", "Compiled fast paths of the static analyzer (bytes only).", -1, methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
#define INTERN(var, text)                              \
    if ((var = PyUnicode_InternFromString(text)) == NULL) \
        return NULL;
    INTERN(S_EMPTY, "");
    INTERN(S_QMARK, "?");
    INTERN(S_REDUCE, "REDUCE");
    INTERN(S_NEWOBJ, "NEWOBJ");
    INTERN(S_NEWOBJ_EX, "NEWOBJ_EX");
    INTERN(S_BUILD, "BUILD");
    INTERN(S_GLOBAL, "GLOBAL");
    INTERN(S_STACK_GLOBAL, "STACK_GLOBAL");
    INTERN(S_PERSID_CALLABLE, "<persistent_load>");
    INTERN(S_PERSID_KIND, "persid");
    INTERN(S_INST, "INST");
    INTERN(S_OBJ, "OBJ");
#undef INTERN
    return PyModule_Create(&moduledef);
}
