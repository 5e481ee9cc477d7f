/* protocol/_sigfast.c: the hot part of protocol.signature_fast and http_signatures.sign_answer, compiled.
 *
 * read_request() does what combined_fields() followed by signature_fast._read() does for a request, in one
 * pass with no Python objects but the results; check_request() that and then the profile's rules on what it
 * read (http_signatures._checked_fast); answer_base() what signature_fast.prepare_answer() does;
 * signed_answer() what http_signatures.sign_answer() does (the rules a signer applies to itself, the base,
 * sign(base) in base64). On a node answering small signed requests, this work in Python cost more than
 * aiohttp's whole handling of the request (goal 5 of issue 8, README "Performance").
 *
 * None of them decides anything on its own: each answers None for anything outside the one canonical shape
 * Satchel nodes write and for anything it is unsure of (a header name outside ASCII, a value it cannot read
 * as text, a component "signature";req in a request, more than its fixed limits), and the caller then runs
 * the Python code, which runs the general RFC 9421 code in turn. When one answers, the Python code answers
 * the same (tests/protocol/test_signature_fast_compiled.py holds them to that with hypothesis). No state, no
 * I/O; the GIL is held throughout (every call is a few microseconds).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_FIELDS 64     /* more header lines than this: the Python reader */
#define MAX_ITEMS 32      /* more covered components than this: the Python reader */
#define MAX_BASE 16384    /* a longer signature base: the Python reader */

typedef struct {
    const char *name; /* lowercase copy in names_buf */
    Py_ssize_t name_len;
    PyObject *value;  /* the combined value (new reference) */
} field_t;

typedef struct {
    field_t f[MAX_FIELDS];
    int n;
    char names_buf[MAX_FIELDS * 64];
    Py_ssize_t names_used;
} fields_t;

static void fields_clear(fields_t *fs) {
    for (int i = 0; i < fs->n; i++) Py_CLEAR(fs->f[i].value);
    fs->n = 0;
}

static field_t *fields_find(fields_t *fs, const char *name, Py_ssize_t len) {
    for (int i = 0; i < fs->n; i++)
        if (fs->f[i].name_len == len && memcmp(fs->f[i].name, name, (size_t)len) == 0) return &fs->f[i];
    return NULL;
}

/* Strip spaces and tabs at both ends of a str, as str.strip(" \t") does. New reference. */
static PyObject *strip_ows(PyObject *value) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(value), start = 0, end = len;
    int kind = PyUnicode_KIND(value);
    const void *data = PyUnicode_DATA(value);
    while (start < end) {
        Py_UCS4 c = PyUnicode_READ(kind, data, start);
        if (c != ' ' && c != '\t') break;
        start++;
    }
    while (end > start) {
        Py_UCS4 c = PyUnicode_READ(kind, data, end - 1);
        if (c != ' ' && c != '\t') break;
        end--;
    }
    return PyUnicode_Substring(value, start, end);
}

/* combined_fields(): 1 when built, 0 when the Python reader must decide, -1 on a Python error. */
static int combine(PyObject *headers, fields_t *fs) {
    PyObject *iter = PyObject_GetIter(headers);
    if (iter == NULL) return -1;
    PyObject *pair;
    int result = 1;
    while (result == 1 && (pair = PyIter_Next(iter)) != NULL) {
        PyObject *name = NULL, *value = NULL;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            result = 0;
        } else {
            name = PyTuple_GET_ITEM(pair, 0);
            value = PyTuple_GET_ITEM(pair, 1);
            if (!PyUnicode_Check(name) || !PyUnicode_Check(value) || !PyUnicode_IS_ASCII(name)) result = 0;
        }
        if (result == 1) {
            Py_ssize_t len = PyUnicode_GET_LENGTH(name);
            const char *raw = (const char *)PyUnicode_DATA(name);
            char lower[64];
            if (len >= 64) {
                result = 0;
            } else {
                for (Py_ssize_t i = 0; i < len; i++) {
                    char c = raw[i];
                    lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
                }
                PyObject *stripped = strip_ows(value);
                if (stripped == NULL) {
                    result = -1;
                } else {
                    field_t *found = fields_find(fs, lower, len);
                    if (found != NULL) {
                        PyObject *joined = PyUnicode_FromFormat("%U, %U", found->value, stripped);
                        Py_DECREF(stripped);
                        if (joined == NULL) {
                            result = -1;
                        } else {
                            Py_SETREF(found->value, joined);
                        }
                    } else if (fs->n >= MAX_FIELDS || fs->names_used + len > (Py_ssize_t)sizeof(fs->names_buf)) {
                        Py_DECREF(stripped);
                        result = 0;
                    } else {
                        char *slot = fs->names_buf + fs->names_used;
                        memcpy(slot, lower, (size_t)len);
                        fs->names_used += len;
                        fs->f[fs->n].name = slot;
                        fs->f[fs->n].name_len = len;
                        fs->f[fs->n].value = stripped;
                        fs->n++;
                    }
                }
            }
        }
        Py_DECREF(pair);
    }
    Py_DECREF(iter);
    if (result == 1 && PyErr_Occurred()) result = -1;
    return result;
}

/* The ASCII text of a str, or NULL (no error set) when it is not ASCII. */
static const char *ascii_of(PyObject *text, Py_ssize_t *len) {
    if (!PyUnicode_IS_ASCII(text)) return NULL;
    *len = PyUnicode_GET_LENGTH(text);
    return (const char *)PyUnicode_DATA(text);
}

static PyObject *field_value(fields_t *fs, const char *name) {
    field_t *found = fields_find(fs, name, (Py_ssize_t)strlen(name));
    return found ? found->value : NULL;
}

/* --- the grammar of signature_fast._INPUT and _SIGNATURE ------------------------------------------- */

static int is_lower_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static int is_b64url(char c) { return is_lower_digit(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '-'; }

/* _KEY = [a-z*][a-z0-9_.*-]* ; returns the length matched (0 = none). */
static Py_ssize_t match_key(const char *s, Py_ssize_t n) {
    if (n < 1 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '*')) return 0;
    Py_ssize_t i = 1;
    while (i < n && (is_lower_digit(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '*' || s[i] == '-')) i++;
    return i;
}

/* _INT = 0|[1-9][0-9]{0,14} ; the length matched, 0 = none. */
static Py_ssize_t match_int(const char *s, Py_ssize_t n, long long *out) {
    if (n < 1 || s[0] < '0' || s[0] > '9') return 0;
    if (s[0] == '0') {
        *out = 0;
        return 1;
    }
    Py_ssize_t i = 0;
    long long v = 0;
    while (i < n && i < 15 && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0');
    *out = v;
    return i;
}

static int starts(const char *s, Py_ssize_t n, const char *lit, Py_ssize_t *len) {
    Py_ssize_t l = (Py_ssize_t)strlen(lit);
    *len = l;
    return n >= l && memcmp(s, lit, (size_t)l) == 0;
}

typedef struct {
    const char *start;
    Py_ssize_t len;
} span_t;

typedef struct {
    span_t label, items, nonce, alg, keyid, params;
    long long created, expires;
    span_t item[MAX_ITEMS];
    int n_items;
} input_t;

/* One _PLAIN item of the component list; the length matched, 0 = none. A "signature";req item of
 * _REQ_SIGNATURE is not read here: in a request it names a value no request has, so the Python reader
 * declines such a request too (or never matches it). */
static Py_ssize_t match_item(const char *s, Py_ssize_t n) {
    if (n < 2 || s[0] != '"') return 0;
    Py_ssize_t i = 1;
    if (s[1] == '@') {
        static const char *derived[] = {"@method\"", "@target-uri\"", "@status\""};
        for (int d = 0; d < 3; d++) {
            Py_ssize_t l;
            if (starts(s + 1, n - 1, derived[d], &l)) return 1 + l;
        }
        return 0;
    }
    while (i < n && (is_lower_digit(s[i]) || s[i] == '-')) i++;
    if (i == 1 || i >= n || s[i] != '"') return 0;
    return i + 1;
}

/* [A-Za-z0-9_-]{least,most} and the closing '"' of a quoted parameter: the length taken with the quote (0 =
 * none), *out the value. */
static Py_ssize_t quoted_b64url(const char *s, Py_ssize_t n, Py_ssize_t least, Py_ssize_t most, span_t *out) {
    Py_ssize_t k = 0;
    while (k < n && is_b64url(s[k])) k++;
    if (k < least || k > most || k >= n || s[k] != '"') return 0;
    out->start = s;
    out->len = k;
    return k + 1;
}

/* fullmatch of _INPUT; 1 matched, 0 not. */
static int match_input(const char *s, Py_ssize_t n, input_t *in) {
    Py_ssize_t i = 0, l;
    Py_ssize_t k = match_key(s, n);
    if (k == 0) return 0;
    in->label.start = s;
    in->label.len = k;
    i = k;
    if (i + 1 >= n || s[i] != '=' || s[i + 1] != '(') return 0;
    in->params.start = s + i + 1;
    in->params.len = n - i - 1;
    i += 2;
    in->items.start = s + i;
    in->n_items = 0;
    for (;;) {
        Py_ssize_t m = match_item(s + i, n - i);
        if (m == 0 || in->n_items >= MAX_ITEMS) return 0;
        in->item[in->n_items].start = s + i;
        in->item[in->n_items].len = m;
        in->n_items++;
        i += m;
        if (i < n && s[i] == ' ') {
            i++;
            continue;
        }
        break;
    }
    in->items.len = (s + i) - in->items.start;
    if (i >= n || s[i] != ')') return 0;
    i++;
    if (!starts(s + i, n - i, ";created=", &l)) return 0;
    i += l;
    if ((k = match_int(s + i, n - i, &in->created)) == 0) return 0;
    i += k;
    if (!starts(s + i, n - i, ";expires=", &l)) return 0;
    i += l;
    if ((k = match_int(s + i, n - i, &in->expires)) == 0) return 0;
    i += k;
    if (!starts(s + i, n - i, ";nonce=\"", &l)) return 0;
    i += l;
    if ((k = quoted_b64url(s + i, n - i, 22, 128, &in->nonce)) == 0) return 0;
    i += k;
    in->alg.start = NULL;
    in->alg.len = 0;
    if (starts(s + i, n - i, ";alg=\"", &l)) {
        Py_ssize_t a;
        if (starts(s + i + l, n - i - l, "ed25519\"", &a) || starts(s + i + l, n - i - l, "hmac-sha256\"", &a)) {
            in->alg.start = s + i + l;
            in->alg.len = a - 1;
            i += l + a;
        } else {
            return 0;
        }
    }
    if (!starts(s + i, n - i, ";keyid=\"", &l)) return 0;
    i += l;
    if ((k = quoted_b64url(s + i, n - i, 1, 64, &in->keyid)) == 0) return 0;
    i += k;
    return i == n;
}

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* _SIGNATURE's fullmatch, and base64 that _decode takes (canonical: what re-encoding gives back): 1, else 0.
 * Sets *label to the member's label, *text to its base64 and *pad to the number of '=' ending it. */
static int signature_text(const char *s, Py_ssize_t n, span_t *label, span_t *text, Py_ssize_t *pad_out) {
    Py_ssize_t k = match_key(s, n);
    if (k == 0 || k + 1 >= n || s[k] != '=' || s[k + 1] != ':' || s[n - 1] != ':' || n < k + 3) return 0;
    label->start = s;
    label->len = k;
    const char *b = s + k + 2;
    Py_ssize_t len = n - k - 3;
    text->start = b;
    text->len = len;
    Py_ssize_t pad = 0;
    while (pad < len && pad < 3 && b[len - 1 - pad] == '=') pad++;
    if (pad > 2 || len % 4 != 0) return 0;
    for (Py_ssize_t i = 0; i < len - pad; i++)
        if (b64_value(b[i]) < 0) return 0;
    *pad_out = pad;
    if (len == 0) return 1;
    /* Canonical only: the bits the padding leaves over are zero (else re-encoding would differ). */
    int last = b64_value(b[len - pad - 1]);
    return !((pad == 2 && (last & 0x0f)) || (pad == 1 && (last & 0x03)));
}

/* The bytes of base64 that signature_text took. */
static PyObject *decode_b64(span_t text, Py_ssize_t pad) {
    const char *b = text.start;
    Py_ssize_t len = text.len, out_len = len / 4 * 3 - pad;
    PyObject *out = PyBytes_FromStringAndSize(NULL, out_len);
    if (out == NULL) return NULL;
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < len; i += 4) {
        int v0 = b64_value(b[i]), v1 = b64_value(b[i + 1]);
        int v2 = b[i + 2] == '=' ? 0 : b64_value(b[i + 2]);
        int v3 = b[i + 3] == '=' ? 0 : b64_value(b[i + 3]);
        unsigned long triple = ((unsigned long)v0 << 18) | ((unsigned long)v1 << 12) | ((unsigned long)v2 << 6) | (unsigned long)v3;
        if (j < out_len) o[j++] = (unsigned char)(triple >> 16);
        if (j < out_len) o[j++] = (unsigned char)(triple >> 8);
        if (j < out_len) o[j++] = (unsigned char)triple;
    }
    return out;
}

/* A tuple of two new references, which it takes (NULL for either: NULL, the other dropped). */
static PyObject *pair_of(PyObject *first, PyObject *second) {
    PyObject *pair = first && second ? PyTuple_Pack(2, first, second) : NULL;
    Py_XDECREF(first);
    Py_XDECREF(second);
    return pair;
}

/* A str of ASCII text (which every caller here has checked it is). */
static PyObject *ascii_str(const char *s, Py_ssize_t n) {
    PyObject *out = PyUnicode_New(n, 127);
    if (out != NULL) memcpy(PyUnicode_DATA(out), s, (size_t)n);
    return out;
}

/* --- the reader ------------------------------------------------------------------------------------ */

static int span_is(span_t sp, const char *lit) {
    Py_ssize_t l = (Py_ssize_t)strlen(lit);
    return sp.len == l && memcmp(sp.start, lit, (size_t)l) == 0;
}

static int base_safe(char c) { return c == '\t' || c == '\n' || (c >= ' ' && c <= '~'); }

/* Append text to the base; 0 when it would not fit or holds a character _BASE_SAFE refuses. */
static int put(char *base, Py_ssize_t *used, const char *s, Py_ssize_t n) {
    if (*used + n > MAX_BASE) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!base_safe(s[i])) return 0;
        base[(*used)++] = s[i];
    }
    return 1;
}

/* read_request(headers, method, target_uri, label, require, has_body)
 *   headers: iterable of (name, value) str pairs, in order; target_uri: the derived @target-uri value;
 *   require: tuple of field names the signature must cover; has_body: True, False or None.
 * -> (key_id, alg | None, created, expires, nonce, identifiers, signature, content_digest | None, base,
 *     signature_field) or None for the Python reader. ``identifiers`` is the component list's text
 *    (signature_fast._split), ``signature_field`` the combined Signature field the signature was read from. */
static PyObject *read_request(PyObject *self, PyObject *args) {
    PyObject *headers, *method_obj, *target_obj, *label_obj, *require, *has_body;
    if (!PyArg_ParseTuple(args, "OUUUO!O", &headers, &method_obj, &target_obj, &label_obj, &PyTuple_Type, &require,
                          &has_body))
        return NULL;
    fields_t fs;
    fs.n = 0;
    fs.names_used = 0;
    PyObject *result = NULL;
    int built = combine(headers, &fs);
    if (built < 0) goto done;
    if (built == 0) goto decline;

    Py_ssize_t method_len, target_len, label_len, text_len, sig_len;
    const char *method = ascii_of(method_obj, &method_len);
    const char *target = ascii_of(target_obj, &target_len);
    const char *label = ascii_of(label_obj, &label_len);
    PyObject *text_obj = field_value(&fs, "signature-input");
    PyObject *sig_obj = field_value(&fs, "signature");
    if (!method || !target || !label || !text_obj || !sig_obj) goto decline;
    const char *text = ascii_of(text_obj, &text_len);
    const char *sig_text = ascii_of(sig_obj, &sig_len);
    if (!text || !sig_text) goto decline;

    input_t in;
    if (!match_input(text, text_len, &in)) goto decline;
    span_t sig_label, sig_b64;
    Py_ssize_t sig_pad;
    if (!signature_text(sig_text, sig_len, &sig_label, &sig_b64, &sig_pad)) goto decline;
    PyObject *signature = decode_b64(sig_b64, sig_pad);
    if (signature == NULL) goto done;
    if (in.label.len != label_len || memcmp(in.label.start, label, (size_t)label_len) != 0 ||
        sig_label.len != label_len || memcmp(sig_label.start, label, (size_t)label_len) != 0) {
        Py_DECREF(signature);
        goto decline;
    }

    /* Coverage (signature_fast._covers): no item twice; the required fields, @method and @target-uri,
     * content-digest when a body may be present or the field is, content-type when the field is. */
    int body_present;
    if (has_body == Py_True) body_present = 1;
    else if (has_body == Py_False) body_present = 0;
    else {
        PyObject *length = field_value(&fs, "content-length");
        Py_ssize_t ll;
        const char *lv = length ? ascii_of(length, &ll) : NULL;
        body_present = field_value(&fs, "transfer-encoding") != NULL ||
                       (length != NULL && !(lv != NULL && ll == 1 && lv[0] == '0'));
    }
    int needs_digest = body_present || field_value(&fs, "content-digest") != NULL;
    int needs_type = field_value(&fs, "content-type") != NULL;
    for (int a = 0; a < in.n_items; a++)
        for (int b = a + 1; b < in.n_items; b++)
            if (in.item[a].len == in.item[b].len && memcmp(in.item[a].start, in.item[b].start, (size_t)in.item[a].len) == 0)
                goto decline_sig;
    {
        Py_ssize_t n_require = PyTuple_GET_SIZE(require);
        int need_count = (int)n_require + 2 + needs_digest + needs_type;
        for (int r = 0; r < need_count; r++) {
            const char *want;
            Py_ssize_t want_len;
            char quoted[80];
            if (r < n_require) {
                PyObject *name = PyTuple_GET_ITEM(require, r);
                if (!PyUnicode_Check(name)) goto decline_sig;
                const char *raw = ascii_of(name, &want_len);
                if (!raw || want_len > 76) goto decline_sig;
                quoted[0] = '"';
                memcpy(quoted + 1, raw, (size_t)want_len);
                quoted[want_len + 1] = '"';
                want = quoted;
                want_len += 2;
            } else {
                int which = r - (int)n_require;
                static const char *fixed[] = {"\"@method\"", "\"@target-uri\""};
                if (which < 2) want = fixed[which];
                else if (which == 2 && needs_digest) want = "\"content-digest\"";
                else want = "\"content-type\"";
                want_len = (Py_ssize_t)strlen(want);
            }
            int found = 0;
            for (int a = 0; a < in.n_items && !found; a++)
                found = in.item[a].len == want_len && memcmp(in.item[a].start, want, (size_t)want_len) == 0;
            if (!found) goto decline_sig;
        }
    }

    /* The base: one line per item, then @signature-params; values as found, printable ASCII, one line. */
    char base[MAX_BASE];
    Py_ssize_t used = 0;
    for (int a = 0; a < in.n_items; a++) {
        span_t item = in.item[a];
        const char *value;
        Py_ssize_t value_len;
        if (span_is(item, "\"@method\"")) {
            value = method;
            value_len = method_len;
        } else if (span_is(item, "\"@target-uri\"")) {
            value = target;
            value_len = target_len;
        } else if (item.start[1] == '@') {
            goto decline_sig; /* @status: not in a request */
        } else {
            char name[64];
            if (item.len - 2 >= 64) goto decline_sig;
            memcpy(name, item.start + 1, (size_t)(item.len - 2));
            name[item.len - 2] = 0;
            PyObject *v = field_value(&fs, name);
            if (v == NULL) goto decline_sig;
            value = ascii_of(v, &value_len);
            if (value == NULL) goto decline_sig;
        }
        if (!put(base, &used, item.start, item.len) || !put(base, &used, ": ", 2) || !put(base, &used, value, value_len) ||
            !put(base, &used, "\n", 1))
            goto decline_sig;
        /* A value holding a line break would forge a line: signature_fast counts them. */
        if (memchr(value, '\n', (size_t)value_len) != NULL) goto decline_sig;
    }
    if (!put(base, &used, "\"@signature-params\": ", 21) || !put(base, &used, in.params.start, in.params.len))
        goto decline_sig;

    {
        PyObject *digest = field_value(&fs, "content-digest");
        PyObject *items[10] = {
            ascii_str(in.keyid.start, in.keyid.len),
            in.alg.start ? ascii_str(in.alg.start, in.alg.len) : Py_NewRef(Py_None),
            PyLong_FromLongLong(in.created),
            PyLong_FromLongLong(in.expires),
            ascii_str(in.nonce.start, in.nonce.len),
            ascii_str(in.items.start, in.items.len),
            signature, /* the tuple takes this reference */
            Py_NewRef(digest ? digest : Py_None),
            PyBytes_FromStringAndSize(base, used),
            Py_NewRef(sig_obj),
        };
        signature = NULL;
        int made = 1;
        for (int i = 0; i < 10; i++) made = made && items[i] != NULL;
        result = made ? PyTuple_New(10) : NULL;
        for (int i = 0; i < 10; i++) {
            if (result != NULL) PyTuple_SET_ITEM(result, i, items[i]);
            else Py_XDECREF(items[i]);
        }
    }
    goto done;

decline_sig:
    Py_XDECREF(signature);
decline:
    result = Py_NewRef(Py_None);
done:
    fields_clear(&fs);
    return result;
}

/* An int argument the Python code compares as is; 0 (no error set) for anything else or past a long long. */
static int int_arg(PyObject *obj, long long *out) {
    int overflow = 0;
    if (!PyLong_CheckExact(obj)) return 0;
    *out = PyLong_AsLongLongAndOverflow(obj, &overflow);
    return !overflow && !(*out == -1 && PyErr_Occurred());
}

static int is_crockford(char c);
static int all_b64url(const char *s, Py_ssize_t n, Py_ssize_t least, Py_ssize_t most);

/* The profile's key ids (signature_profile.KEY_ID_PATTERN, SESSION_KEY_ID_PATTERN): 1 for a session key,
 * 0 for a node key, -1 for neither. */
static int key_kind(const char *key_id, Py_ssize_t key_len) {
    if (key_len >= 3 && memcmp(key_id, "hs-", 3) == 0) return all_b64url(key_id + 3, key_len - 3, 22, 22) ? 1 : -1;
    if (key_len != 24 || memcmp(key_id, "ed25519-", 8) != 0) return -1;
    for (int i = 8; i < 24; i++)
        if (!is_crockford(key_id[i])) return -1;
    return 0;
}

/* check_request(headers, method, target_uri, label, require, has_body, now, max_skew, max_lifetime)
 * read_request, then the profile's rules on what it read, as http_signatures._checked_fast applies them
 * (profile_values, check_algorithm, check_times): read_request's tuple when every rule holds, None when
 * read_request declined or a rule does not hold (the Python code then raises the precise error). */
static PyObject *check_request(PyObject *self, PyObject *args) {
    PyObject *now_obj, *skew_obj, *lifetime_obj;
    if (PyTuple_GET_SIZE(args) != 9) {
        PyErr_SetString(PyExc_TypeError, "check_request takes 9 arguments");
        return NULL;
    }
    now_obj = PyTuple_GET_ITEM(args, 6);
    skew_obj = PyTuple_GET_ITEM(args, 7);
    lifetime_obj = PyTuple_GET_ITEM(args, 8);
    long long now, skew, lifetime;
    if (!int_arg(now_obj, &now) || !int_arg(skew_obj, &skew) || !int_arg(lifetime_obj, &lifetime)) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    /* now + skew and now - skew below: far from a long long's ends, or the Python code's. */
    const long long bound = 1LL << 60;
    if (now <= -bound || now >= bound || skew <= -bound || skew >= bound) Py_RETURN_NONE;
    PyObject *read_args = PyTuple_GetSlice(args, 0, 6);
    if (read_args == NULL) return NULL;
    PyObject *found = read_request(self, read_args);
    Py_DECREF(read_args);
    if (found == NULL || found == Py_None) return found;
    Py_ssize_t key_len;
    const char *key_id = ascii_of(PyTuple_GET_ITEM(found, 0), &key_len);
    PyObject *alg = PyTuple_GET_ITEM(found, 1);
    long long created = PyLong_AsLongLong(PyTuple_GET_ITEM(found, 2));
    long long expires = PyLong_AsLongLong(PyTuple_GET_ITEM(found, 3));
    /* The nonce is 22-128 base64url characters already (match_input), as NONCE_PATTERN wants. */
    int kind = key_id == NULL ? -1 : key_kind(key_id, key_len);
    int alg_ok;
    if (kind == 1) /* a session key signs with HMAC-SHA256 and says so */
        alg_ok = alg != Py_None && PyUnicode_CompareWithASCIIString(alg, "hmac-sha256") == 0;
    else /* a node key with Ed25519, said or not */
        alg_ok = alg == Py_None || PyUnicode_CompareWithASCIIString(alg, "ed25519") == 0;
    if (kind < 0 || !alg_ok || expires <= created || expires - created > lifetime || created > now + skew ||
        expires < now - skew) {
        Py_DECREF(found);
        Py_RETURN_NONE;
    }
    return found;
}

/* --- answers ---------------------------------------------------------------------------------------- */

static int all_key(const char *s, Py_ssize_t n) { return n > 0 && match_key(s, n) == n; }

static int all_b64url(const char *s, Py_ssize_t n, Py_ssize_t least, Py_ssize_t most) {
    if (n < least || n > most) return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!is_b64url(s[i])) return 0;
    return 1;
}

/* A field value for the base, stripped of spaces and tabs; NULL when it is not one line of printable ASCII
 * or tabs (what signature_fast._BASE_SAFE and its line count allow). */
static const char *line_value(PyObject *value, Py_ssize_t *len) {
    const char *s = ascii_of(value, len);
    if (s == NULL) return NULL;
    while (*len > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        (*len)--;
    }
    while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t')) (*len)--;
    for (Py_ssize_t i = 0; i < *len; i++)
        if (!(s[i] == '\t' || (s[i] >= ' ' && s[i] <= '~'))) return NULL;
    return s;
}

/* A text being built in a fixed buffer; ok drops to 0 once something does not fit. */
typedef struct {
    char *p;
    Py_ssize_t n, cap;
    int ok;
} buf_t;

static void put_text(buf_t *b, const char *s, Py_ssize_t n) {
    if (!b->ok || n > b->cap - b->n) {
        b->ok = 0;
        return;
    }
    memcpy(b->p + b->n, s, (size_t)n);
    b->n += n;
}

static void put_lit(buf_t *b, const char *s) { put_text(b, s, (Py_ssize_t)strlen(s)); }

/* A number 0 <= v as %0<digits>lld writes it. */
static void put_int(buf_t *b, long long v, int digits) {
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 || i < digits);
    while (i > 0 && b->ok) {
        if (b->n >= b->cap) b->ok = 0;
        else b->p[b->n++] = tmp[--i];
    }
}

/* The Signature-Input member and the signature base of an answer (signature_fast.prepare_answer), into
 * member and base: 1 built, 0 when the Python code must decide. alg is NULL for none. */
static int build_answer(PyObject *status_obj, PyObject *digest_obj, PyObject *type_obj, PyObject *answered_obj,
                        PyObject *label_obj, PyObject *req_label_obj, PyObject *created_obj, PyObject *expires_obj,
                        PyObject *nonce_obj, const char *alg, Py_ssize_t alg_len, PyObject *key_obj, buf_t *member,
                        buf_t *base) {
    /* Anything but the types the Python code is given (an int that is not a bool, str) is its to judge. */
    if (!PyLong_CheckExact(status_obj) || !PyLong_CheckExact(created_obj) || !PyLong_CheckExact(expires_obj) ||
        !PyUnicode_Check(digest_obj) || !PyUnicode_Check(type_obj) || !PyUnicode_Check(label_obj) ||
        !PyUnicode_Check(req_label_obj) || !PyUnicode_Check(nonce_obj) || !PyUnicode_Check(key_obj) ||
        !PyUnicode_Check(answered_obj))
        return 0;
    int over_status = 0, over_created = 0, over_expires = 0;
    long status = PyLong_AsLongAndOverflow(status_obj, &over_status);
    long long created = PyLong_AsLongLongAndOverflow(created_obj, &over_created);
    long long expires = PyLong_AsLongLongAndOverflow(expires_obj, &over_expires);
    if (over_status || over_created || over_expires || status < 100 || status > 999) return 0;
    /* _INT: 0 or up to 15 digits without a leading zero, which %lld writes for 0 <= v < 10**15. */
    if (created < 0 || created >= 1000000000000000LL || expires < 0 || expires >= 1000000000000000LL) return 0;

    Py_ssize_t label_len, req_len, nonce_len, key_len, answered_len, digest_len, type_len;
    const char *label = ascii_of(label_obj, &label_len);
    const char *req_label = ascii_of(req_label_obj, &req_len);
    const char *nonce = ascii_of(nonce_obj, &nonce_len);
    const char *key_id = ascii_of(key_obj, &key_len);
    const char *answered = ascii_of(answered_obj, &answered_len);
    if (!label || !req_label || !nonce || !key_id || !answered) return 0;
    if (!all_key(label, label_len) || !all_key(req_label, req_len) || !all_b64url(nonce, nonce_len, 22, 128) ||
        !all_b64url(key_id, key_len, 1, 64))
        return 0;
    if (alg && !((alg_len == 7 && memcmp(alg, "ed25519", 7) == 0) || (alg_len == 11 && memcmp(alg, "hmac-sha256", 11) == 0)))
        return 0;
    /* The request's Signature: one member labelled request_label, canonical base64 (_signature_member). */
    span_t sig_label, sig_b64;
    Py_ssize_t sig_pad;
    if (!signature_text(answered, answered_len, &sig_label, &sig_b64, &sig_pad)) return 0;
    if (sig_label.len != req_len || memcmp(sig_label.start, req_label, (size_t)req_len) != 0) return 0;
    const char *digest = line_value(digest_obj, &digest_len);
    const char *type = line_value(type_obj, &type_len);
    if (!digest || !type) return 0;

    put_lit(member, "(\"@status\" \"content-digest\" \"content-type\" \"signature\";req;key=\"");
    put_text(member, req_label, req_len);
    put_lit(member, "\");created=");
    put_int(member, created, 1);
    put_lit(member, ";expires=");
    put_int(member, expires, 1);
    put_lit(member, ";nonce=\"");
    put_text(member, nonce, nonce_len);
    if (alg) {
        put_lit(member, "\";alg=\"");
        put_text(member, alg, alg_len);
    }
    put_lit(member, "\";keyid=\"");
    put_text(member, key_id, key_len);
    put_lit(member, "\"");
    if (!member->ok) return 0; /* a label too long for it: the Python code's */

    put_lit(base, "\"@status\": ");
    put_int(base, status, 3);
    put_lit(base, "\n\"content-digest\": ");
    put_text(base, digest, digest_len);
    put_lit(base, "\n\"content-type\": ");
    put_text(base, type, type_len);
    put_lit(base, "\n\"signature\";req;key=\"");
    put_text(base, req_label, req_len);
    put_lit(base, "\": :");
    put_text(base, sig_b64.start, sig_b64.len);
    put_lit(base, ":\n\"@signature-params\": ");
    put_text(base, member->p, member->n);
    return base->ok; /* over 16 KiB: the Python code's */
}

#define MAX_MEMBER 512

/* answer_base(status, content_digest, content_type, request_signature, label, request_label, created, expires,
 *             nonce, alg, key_id) -> (member, base) or None: signature_fast.prepare_answer, compiled. */
static PyObject *answer_base(PyObject *self, PyObject *args) {
    PyObject *status_obj, *digest_obj, *type_obj, *answered_obj, *label_obj, *req_label_obj, *created_obj, *expires_obj,
        *nonce_obj, *alg_obj, *key_obj;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOO", &status_obj, &digest_obj, &type_obj, &answered_obj, &label_obj,
                          &req_label_obj, &created_obj, &expires_obj, &nonce_obj, &alg_obj, &key_obj))
        return NULL;
    Py_ssize_t alg_len = 0;
    const char *alg = NULL;
    if (alg_obj != Py_None) {
        if (!PyUnicode_Check(alg_obj) || (alg = ascii_of(alg_obj, &alg_len)) == NULL) Py_RETURN_NONE;
    }
    char member_text[MAX_MEMBER], base_text[MAX_BASE];
    buf_t member = {member_text, 0, MAX_MEMBER, 1}, base = {base_text, 0, MAX_BASE, 1};
    if (!build_answer(status_obj, digest_obj, type_obj, answered_obj, label_obj, req_label_obj, created_obj,
                      expires_obj, nonce_obj, alg, alg_len, key_obj, &member, &base))
        Py_RETURN_NONE;
    PyObject *member_str = ascii_str(member.p, member.n);
    return pair_of(member_str, member_str ? PyBytes_FromStringAndSize(base.p, base.n) : NULL);
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int is_crockford(char c) { /* [0-9a-hjkmnp-tv-z]: a node key id's 16 characters */
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'h') || c == 'j' || c == 'k' || c == 'm' || c == 'n' ||
           (c >= 'p' && c <= 't') || (c >= 'v' && c <= 'z');
}

/* signed_answer(status, content_digest, content_type, request_signature, label, request_label, created, expires,
 *               nonce, key_id, include_alg, sign) -> (Signature-Input value, Signature value) or None
 * http_signatures.sign_answer, compiled: the profile's rules a signer applies to itself (key id, nonce,
 * times, the key's one algorithm), answer_base, then sign(base) in base64. None for anything those rules or
 * answer_base would not take: the Python code then signs, refuses or raises as it always does. */
static PyObject *signed_answer(PyObject *self, PyObject *args) {
    PyObject *status, *digest, *type, *answered, *label, *req_label, *created_obj, *expires_obj, *nonce, *key_obj,
        *include_alg, *sign;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOO", &status, &digest, &type, &answered, &label, &req_label, &created_obj,
                          &expires_obj, &nonce, &key_obj, &include_alg, &sign))
        return NULL;
    if (!PyUnicode_Check(key_obj) || !PyLong_CheckExact(created_obj) || !PyLong_CheckExact(expires_obj) ||
        !PyBool_Check(include_alg) || !PyUnicode_Check(label))
        Py_RETURN_NONE;
    Py_ssize_t key_len, label_len;
    const char *key_id = ascii_of(key_obj, &key_len);
    const char *label_text = ascii_of(label, &label_len);
    if (key_id == NULL || label_text == NULL) Py_RETURN_NONE;
    /* KEY_ID_PATTERN or SESSION_KEY_ID_PATTERN (signature_profile.profile_values). */
    int session = key_kind(key_id, key_len);
    if (session < 0) Py_RETURN_NONE;
    int over_created = 0, over_expires = 0;
    long long created = PyLong_AsLongLongAndOverflow(created_obj, &over_created);
    long long expires = PyLong_AsLongLongAndOverflow(expires_obj, &over_expires);
    /* expires after created, at most MAX_LIFETIME (300 s) later (profile_values, check_times). */
    if (over_created || over_expires || expires <= created || expires - created > 300) Py_RETURN_NONE;
    const char *alg = session ? "hmac-sha256" : (include_alg == Py_True ? "ed25519" : NULL);
    /* build_answer checks the nonce ([A-Za-z0-9_-]{22,128}, as NONCE_PATTERN) and everything else. */
    char member_text[MAX_MEMBER], base_text[MAX_BASE];
    buf_t member = {member_text, 0, MAX_MEMBER, 1}, base = {base_text, 0, MAX_BASE, 1};
    if (!build_answer(status, digest, type, answered, label, req_label, created_obj, expires_obj, nonce, alg,
                      alg ? (Py_ssize_t)strlen(alg) : 0, key_obj, &member, &base))
        Py_RETURN_NONE;
    PyObject *base_bytes = PyBytes_FromStringAndSize(base.p, base.n);
    if (base_bytes == NULL) return NULL;
    PyObject *signed_raw = PyObject_CallOneArg(sign, base_bytes);
    Py_DECREF(base_bytes);
    if (signed_raw == NULL) return NULL;
    PyObject *signature = PyBytes_FromObject(signed_raw); /* bytes(sign(base)), as the Python code takes it */
    Py_DECREF(signed_raw);
    if (signature == NULL) return NULL;
    Py_ssize_t raw_len = PyBytes_GET_SIZE(signature);
    if (raw_len > 1024) { /* no Satchel key signs that much: the Python code's */
        Py_DECREF(signature);
        Py_RETURN_NONE;
    }
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(signature);
    /* label=:base64: (label is a _KEY, checked by build_answer, so ASCII) */
    char value_text[MAX_MEMBER + 1400];
    buf_t value = {value_text, 0, (Py_ssize_t)sizeof value_text, 1};
    put_text(&value, label_text, label_len);
    put_lit(&value, "=:");
    for (Py_ssize_t i = 0; i < raw_len && value.ok; i += 3) {
        unsigned long v = (unsigned long)raw[i] << 16;
        if (i + 1 < raw_len) v |= (unsigned long)raw[i + 1] << 8;
        if (i + 2 < raw_len) v |= raw[i + 2];
        char quad[4] = {B64[(v >> 18) & 63], B64[(v >> 12) & 63], i + 1 < raw_len ? B64[(v >> 6) & 63] : '=',
                        i + 2 < raw_len ? B64[v & 63] : '='};
        put_text(&value, quad, 4);
    }
    put_lit(&value, ":");
    Py_DECREF(signature);
    char input_text[MAX_MEMBER * 2];
    buf_t input = {input_text, 0, (Py_ssize_t)sizeof input_text, 1};
    put_text(&input, label_text, label_len);
    put_lit(&input, "=");
    put_text(&input, member.p, member.n);
    if (!value.ok || !input.ok) Py_RETURN_NONE; /* a label too long for them: the Python code's */
    PyObject *input_str = ascii_str(input.p, input.n);
    return pair_of(input_str, input_str ? ascii_str(value.p, value.n) : NULL);
}

static PyMethodDef methods[] = {
    {"read_request", read_request, METH_VARARGS, "signature_fast's request reader, compiled: a tuple or None."},
    {"check_request", check_request, METH_VARARGS, "read_request, then the profile's rules: a tuple or None."},
    {"answer_base", answer_base, METH_VARARGS, "signature_fast.prepare_answer, compiled: (member, base) or None."},
    {"signed_answer", signed_answer, METH_VARARGS, "http_signatures.sign_answer, compiled: two field values or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "protocol._sigfast", NULL, -1, methods};

PyMODINIT_FUNC PyInit__sigfast(void) { return PyModule_Create(&module); }
