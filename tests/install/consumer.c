/* consumer.c - links against an installed librlab and uses it for real. */
#include <racelab.h>
#include <stdio.h>

static rlab_lock *lock;
static long counter;

static void *work(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++) {
        rlab_lock_acquire(lock, RLAB_FOREVER);
        counter++;
        rlab_lock_release(lock);
    }
    return NULL;
}

int main(void)
{
    lock = rlab_lock_new();
    rlab_thread *t[2];
    for (int i = 0; i < 2; i++)
        if (rlab_thread_start(&t[i], NULL, work, NULL, false) != 0)
            return 1;
    for (int i = 0; i < 2; i++) {
        if (rlab_thread_join(t[i], 30.0, NULL) != 0)
            return 1;
        rlab_thread_free(t[i]);
    }
    rlab_lock_free(lock);
    printf("racelab %s consumer: counter=%ld\n", RLAB_VERSION_STRING, counter);
    return counter == 20000 ? 0 : 1;
}
