// wrapper: two lock-order inversions made through one lock wrapper class,
// as many C++ code bases have (a Lock whose lock() forwards to
// pthread_mutex_lock). Accounts take account_lock then ledger_lock on
// deposit and ledger_lock then account_lock on audit; the cache takes
// index_lock then entry_lock on insert and entry_lock then index_lock on
// evict. Two threads run each pair at the same time, taking turns, so
// nothing hangs: two potential deadlocks, which the wrapper's one call
// site must not merge into one.
#include <atomic>
#include <cstdio>
#include <pthread.h>
#include <sched.h>

#define NOINLINE __attribute__((noinline))

class Lock {
  public:
    NOINLINE void lock() { pthread_mutex_lock(&m_); }
    NOINLINE void unlock() { pthread_mutex_unlock(&m_); }

  private:
    pthread_mutex_t m_ = PTHREAD_MUTEX_INITIALIZER;
};

static Lock account_lock, ledger_lock, index_lock, entry_lock;
static long balance, entries;
static std::atomic<int> turn{0};

static void turn_wait(int i) {
    while (turn.load() != i)
        sched_yield();
}

static NOINLINE void deposit() {
    account_lock.lock();
    ledger_lock.lock();
    balance++;
    ledger_lock.unlock();
    account_lock.unlock();
}

static NOINLINE void audit() {
    ledger_lock.lock();
    account_lock.lock();
    balance--;
    account_lock.unlock();
    ledger_lock.unlock();
}

static NOINLINE void insert() {
    index_lock.lock();
    entry_lock.lock();
    entries++;
    entry_lock.unlock();
    index_lock.unlock();
}

static NOINLINE void evict() {
    entry_lock.lock();
    index_lock.lock();
    entries--;
    index_lock.unlock();
    entry_lock.unlock();
}

static void *teller(void *) {
    turn_wait(0);
    deposit();
    insert();
    turn++;
    return nullptr;
}

static void *auditor(void *) {
    turn_wait(1);
    audit();
    evict();
    return nullptr;
}

int main() {
    pthread_t a, b;
    pthread_create(&a, nullptr, teller, nullptr);
    pthread_create(&b, nullptr, auditor, nullptr);
    pthread_join(a, nullptr);
    pthread_join(b, nullptr);
    std::printf("wrapper: balance %ld, entries %ld\n", balance, entries);
    return 0;
}
