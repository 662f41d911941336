/*
 * litmus.c - lesson 10: what the hardware may reorder.
 *
 * Two classic litmus tests, each a handful of instructions per state:
 *
 *   store buffering (SB)      message passing (MP)
 *   T1: x = 1; r1 = y         T1: data = 1; flag = 1
 *   T2: y = 1; r2 = x         T2: r1 = flag; r2 = data
 *
 * SB's "0, 0" (both loads missed both stores) is what an x86 store buffer
 * produces every few thousand trials; it breaks any mutual exclusion built
 * on "raise my flag, then look at yours" (Dekker, Peterson).  MP's "1, 0"
 * (flag seen, data not) is what a weakly ordered CPU (Arm, POWER) may show
 * and x86 never does.  The variants differ only in the memory order of
 * the same accesses.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "lab.h"

/* ---------------------------------------------------------- racy (SB) --- */

/* Dekker's entry protocol without fences: each thread raises its flag,
 * then enters only if the other's flag is down.  Plain volatile ints: each
 * access really happens, in program order as far as the compiler goes, but
 * none is atomic and nothing orders the store before the load in the CPU. */
typedef struct {
    volatile int flag1, flag2;
    int r1, r2; /* what each thread saw of the other's flag */
} dekker;

static void dekker_t1(void *p)
{
    dekker *s = p;
    s->flag1 = 1;
    s->r1 = s->flag2; /* 0: "the other is not interested", so T1 enters */
}

static void dekker_t2(void *p)
{
    dekker *s = p;
    s->flag2 = 1;
    s->r2 = s->flag1;
}

static void dekker_outcome(const void *p, char *key, size_t len)
{
    const dekker *s = p;
    snprintf(key, len, "%d, %d", s->r1, s->r2);
}

static const rlab_outcome dekker_grades[] = {
    {"0, 0", RLAB_FORBIDDEN,
     "both saw the other's flag down: both entered the critical section"},
    {"1, 0", RLAB_ACCEPTABLE, "T2 entered, T1 saw its flag and stayed out"},
    {"0, 1", RLAB_ACCEPTABLE, "T1 entered, T2 saw its flag and stayed out"},
    {"1, 1", RLAB_ACCEPTABLE,
     "both saw both flags: neither entered (Dekker then backs off)"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

static void build_racy(const lab_params *p, rlab_stress_test *t)
{
    (void)p;
    t->name = "litmus.racy";
    t->description = "Dekker's entry on plain volatile flags (store buffering)";
    t->state_size = sizeof(dekker);
    t->actor[0] = dekker_t1;
    t->actor[1] = dekker_t2;
    t->outcome = dekker_outcome;
    t->outcomes = dekker_grades;
}

/* ----------------------------------------------- SB with C11 atomics --- */

typedef struct {
    atomic_int x, y;
    int r1, r2;
} sb;

static void sb_relaxed_t1(void *p)
{
    sb *s = p;
    atomic_store_explicit(&s->x, 1, memory_order_relaxed);
    s->r1 = atomic_load_explicit(&s->y, memory_order_relaxed);
}

static void sb_relaxed_t2(void *p)
{
    sb *s = p;
    atomic_store_explicit(&s->y, 1, memory_order_relaxed);
    s->r2 = atomic_load_explicit(&s->x, memory_order_relaxed);
}

/* seq_cst: every seq_cst operation takes its place in one total order that
 * all threads agree on, so one of the two stores comes first and the
 * other thread's later load must see it.  On x86 the store becomes an
 * XCHG (or MOV + MFENCE), which drains the store buffer. */
static void sb_seq_cst_t1(void *p)
{
    sb *s = p;
    atomic_store_explicit(&s->x, 1, memory_order_seq_cst);
    s->r1 = atomic_load_explicit(&s->y, memory_order_seq_cst);
}

static void sb_seq_cst_t2(void *p)
{
    sb *s = p;
    atomic_store_explicit(&s->y, 1, memory_order_seq_cst);
    s->r2 = atomic_load_explicit(&s->x, memory_order_seq_cst);
}

static void sb_outcome(const void *p, char *key, size_t len)
{
    const sb *s = p;
    snprintf(key, len, "%d, %d", s->r1, s->r2);
}

static const rlab_outcome sb_relaxed_grades[] = {
    {"0, 0", RLAB_INTERESTING,
     "both loads ran before both stores were visible (store buffering)"},
    {"1, 0", RLAB_ACCEPTABLE, "T2 ran first"},
    {"0, 1", RLAB_ACCEPTABLE, "T1 ran first"},
    {"1, 1", RLAB_ACCEPTABLE, "the two overlapped"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

static const rlab_outcome sb_seq_cst_grades[] = {
    {"0, 0", RLAB_FORBIDDEN,
     "no single order of the four seq_cst operations gives this"},
    {"1, 0", RLAB_ACCEPTABLE, "T2 ran first"},
    {"0, 1", RLAB_ACCEPTABLE, "T1 ran first"},
    {"1, 1", RLAB_ACCEPTABLE, "the two overlapped"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

static void build_sb_relaxed(const lab_params *p, rlab_stress_test *t)
{
    (void)p;
    t->name = "litmus.sb_relaxed";
    t->description = "store buffering, relaxed atomics";
    t->state_size = sizeof(sb);
    t->actor[0] = sb_relaxed_t1;
    t->actor[1] = sb_relaxed_t2;
    t->outcome = sb_outcome;
    t->outcomes = sb_relaxed_grades;
}

static void build_sb_seq_cst(const lab_params *p, rlab_stress_test *t)
{
    (void)p;
    t->name = "litmus.sb_seq_cst";
    t->description = "store buffering, seq_cst atomics";
    t->state_size = sizeof(sb);
    t->actor[0] = sb_seq_cst_t1;
    t->actor[1] = sb_seq_cst_t2;
    t->outcome = sb_outcome;
    t->outcomes = sb_seq_cst_grades;
}

/* ------------------------------------------ MP with C11 atomics --- */

typedef struct {
    atomic_int data, flag;
    int r1, r2; /* r1: the flag seen, r2: the data seen */
} mp;

static void mp_relaxed_writer(void *p)
{
    mp *s = p;
    atomic_store_explicit(&s->data, 1, memory_order_relaxed);
    atomic_store_explicit(&s->flag, 1, memory_order_relaxed);
}

static void mp_relaxed_reader(void *p)
{
    mp *s = p;
    s->r1 = atomic_load_explicit(&s->flag, memory_order_relaxed);
    s->r2 = atomic_load_explicit(&s->data, memory_order_relaxed);
}

/* A release store publishes everything written before it; an acquire
 * load that reads it sees all of that. */
static void mp_acqrel_writer(void *p)
{
    mp *s = p;
    atomic_store_explicit(&s->data, 1, memory_order_relaxed);
    atomic_store_explicit(&s->flag, 1, memory_order_release);
}

static void mp_acqrel_reader(void *p)
{
    mp *s = p;
    s->r1 = atomic_load_explicit(&s->flag, memory_order_acquire);
    s->r2 = atomic_load_explicit(&s->data, memory_order_relaxed);
}

static void mp_outcome(const void *p, char *key, size_t len)
{
    const mp *s = p;
    snprintf(key, len, "%d, %d", s->r1, s->r2);
}

static const rlab_outcome mp_relaxed_grades[] = {
    {"1, 0", RLAB_INTERESTING,
     "flag seen, data not: allowed by C11 (Arm, POWER; never x86)"},
    {"0, 0", RLAB_ACCEPTABLE, "the reader ran first"},
    {"0, 1", RLAB_ACCEPTABLE, "the reader ran between the two stores"},
    {"1, 1", RLAB_ACCEPTABLE, "the message arrived whole"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

static const rlab_outcome mp_acqrel_grades[] = {
    {"1, 0", RLAB_FORBIDDEN,
     "flag seen, data not: the acquire load must see the release's past"},
    {"0, 0", RLAB_ACCEPTABLE, "the reader ran first"},
    {"0, 1", RLAB_ACCEPTABLE, "the reader ran between the two stores"},
    {"1, 1", RLAB_ACCEPTABLE, "the message arrived whole"},
    {NULL, RLAB_ACCEPTABLE, NULL},
};

static void build_mp_relaxed(const lab_params *p, rlab_stress_test *t)
{
    (void)p;
    t->name = "litmus.mp_relaxed";
    t->description = "message passing, relaxed atomics";
    t->state_size = sizeof(mp);
    t->actor[0] = mp_relaxed_writer;
    t->actor[1] = mp_relaxed_reader;
    t->outcome = mp_outcome;
    t->outcomes = mp_relaxed_grades;
}

static void build_mp_acqrel(const lab_params *p, rlab_stress_test *t)
{
    (void)p;
    t->name = "litmus.mp_acqrel";
    t->description = "message passing, release store / acquire load";
    t->state_size = sizeof(mp);
    t->actor[0] = mp_acqrel_writer;
    t->actor[1] = mp_acqrel_reader;
    t->outcome = mp_outcome;
    t->outcomes = mp_acqrel_grades;
}

/* ------------------------------------------------------------ lesson --- */

static const lab_variant variants[] = {
    {.name = "racy",
     .summary = "Dekker's flags on plain ints: both threads enter (0, 0)",
     .racy = true,
     .tsan = LAB_TSAN_RACE,
     .build = build_racy,
     .seconds = 1.0},
    {.name = "sb_relaxed",
     .summary = "store buffering, relaxed atomics: 0, 0 is allowed and seen",
     .tsan = LAB_TSAN_CLEAN,
     .build = build_sb_relaxed,
     .seconds = 1.0},
    {.name = "sb_seq_cst",
     .summary = "store buffering, seq_cst atomics: 0, 0 never happens",
     .tsan = LAB_TSAN_CLEAN,
     .build = build_sb_seq_cst,
     .seconds = 0.5},
    {.name = "mp_relaxed",
     .summary = "message passing, relaxed: flag without data is allowed",
     .tsan = LAB_TSAN_CLEAN,
     .build = build_mp_relaxed,
     .seconds = 0.5},
    {.name = "mp_acqrel",
     .summary = "message passing, release/acquire: the data always arrives",
     .tsan = LAB_TSAN_CLEAN,
     .build = build_mp_acqrel,
     .seconds = 0.5},
};

static const char *const explain[] = {
    "litmus: the reorderings the hardware allows\n"
    "\n"
    "A litmus test is a few loads and stores on two threads, run millions\n"
    "of times, with every result tallied.  This lesson runs the two most\n"
    "famous ones.  Each state is a few bytes and each actor two\n"
    "instructions, so the harness runs millions of trials per second and\n"
    "the two threads really do execute the same state at the same moment.",

    "Store buffering (SB), and why litmus.racy fails\n"
    "\n"
    "    T1: x = 1; r1 = y          T2: y = 1; r2 = x\n"
    "\n"
    "Interleave the four lines any way you like: at least one load comes\n"
    "after the other thread's store, so \"0, 0\" looks impossible.  It is\n"
    "not.  An x86 core puts each store in its store buffer and carries on;\n"
    "the store reaches the cache (and the other core) a little later.  The\n"
    "load right behind it does not wait, so both loads can read 0 while\n"
    "both stores are still in flight: the store moved after the load.  x86\n"
    "allows exactly this one reordering (store then load of a different\n"
    "address); Arm and POWER allow more.\n"
    "\n"
    "litmus.racy is Dekker's entry protocol: each thread raises its flag,\n"
    "then enters the critical section only if the other's flag is down.\n"
    "\"0, 0\" means both entered: mutual exclusion is gone.  The flags are\n"
    "volatile ints (dekker_t1, dekker_t2), so the compiler emits every\n"
    "access in order, yet the CPU still reorders them; and in C a plain\n"
    "int written by one thread and read by another is a data race, which\n"
    "ThreadSanitizer reports.  Expect \"0, 0\" in about one trial in a\n"
    "hundred on x86 (tens of thousands per run; far fewer under TSan,\n"
    "whose instrumentation spaces the accesses out).",

    "litmus.sb_relaxed and litmus.sb_seq_cst\n"
    "\n"
    "sb_relaxed makes x and y atomic_int and uses memory_order_relaxed:\n"
    "no data race any more (TSan is silent), but relaxed promises only\n"
    "that each access is indivisible, not when other threads see it.  C11\n"
    "allows \"0, 0\", and x86 shows it at about the same rate as the racy\n"
    "variant: the same MOV instructions run.  INTERESTING, not FORBIDDEN:\n"
    "the program asked for no ordering.\n"
    "\n"
    "sb_seq_cst uses memory_order_seq_cst (the default of atomic_store and\n"
    "atomic_load): all seq_cst operations form one total order that every\n"
    "thread agrees on and that respects each thread's program order.  In\n"
    "that order one store comes first, and the other thread's load comes\n"
    "after it, so at least one load sees a 1.  On x86 the compiler turns\n"
    "the store into XCHG (or MOV + MFENCE), which waits for the store\n"
    "buffer to drain before the load runs.  Run\n"
    "    racelab run litmus.sb_seq_cst --trials 10000000\n"
    "and \"0, 0\" never appears.  This is why a correct Dekker or Peterson\n"
    "lock needs seq_cst (or a full fence) between its store and its load,\n"
    "and why real locks use an atomic read-modify-write instead.",

    "Message passing (MP): litmus.mp_relaxed and litmus.mp_acqrel\n"
    "\n"
    "    T1: data = 1; flag = 1      T2: r1 = flag; r2 = data\n"
    "\n"
    "\"1, 0\" is a message whose flag arrived before its data.  With relaxed\n"
    "atomics C11 allows it: the compiler may reorder the two stores or the\n"
    "two loads, and Arm or POWER cores may make the stores visible out of\n"
    "order or satisfy the loads out of order.  x86 does not: it keeps\n"
    "stores in order and loads in order, so on x86 mp_relaxed shows \"1, 0\"\n"
    "zero times, and that proves nothing about the code; on an Arm machine\n"
    "the same binary built for it shows it.  \"Works on my x86\" is not a\n"
    "memory model.\n"
    "\n"
    "mp_acqrel makes the flag store memory_order_release and the flag load\n"
    "memory_order_acquire.  A release store publishes every write the\n"
    "thread made before it; an acquire load that reads the released value\n"
    "sees all of them.  \"1, 0\" becomes FORBIDDEN on every architecture.\n"
    "On x86 both compile to plain MOVs (its ordering is already that\n"
    "strong), so acquire/release costs nothing there; on Arm they become\n"
    "STLR and LDAR.  This pairing is what every lock, queue and future in\n"
    "racelab uses to hand data from one thread to another.",

    "Where to look\n"
    "\n"
    "src/lab/lessons/litmus.c: dekker_t1/dekker_t2 (racy), sb_relaxed_t1,\n"
    "sb_seq_cst_t1 and their mirror images, mp_relaxed_writer/reader and\n"
    "mp_acqrel_writer/reader.  Each variant is the same code with a\n"
    "different memory_order.  The harness (src/lab/stress.c) is what makes\n"
    "the reorderings visible: both actor threads stay alive for the whole\n"
    "run and sweep the same batch of states side by side, so the two\n"
    "threads touch each state within nanoseconds of each other.  A\n"
    "pthread_barrier per trial lines them up thousands of times more\n"
    "slowly and almost never shows \"0, 0\".",
    NULL,
};

const lab_lesson lab_lesson_litmus = {
    .name = "litmus",
    .summary = "store buffering and message passing: what hardware reorders",
    .explain = explain,
    .variants = variants,
    .nvariants = sizeof variants / sizeof variants[0],
};
