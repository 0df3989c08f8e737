// heap_reuse: C++ objects with a std::mutex, made and deleted in a loop.
// std::mutex is never initialised nor destroyed through pthreads, and the
// allocator gives each new Account the address of the one just deleted.
// Even iterations lock account then registry, odd ones registry then
// account, each on an Account that never coexisted with the other: no two
// locks are ever taken in both orders, so nothing may be reported.
//
// `heap_reuse inverted` takes both orders on one live Account (from two
// threads running at once, taking turns): that inversion is real and
// reported.
#include <cstring>
#include <cstdio>
#include <atomic>
#include <mutex>
#include <thread>

struct Account {
    std::mutex mu;
    long balance = 0;
};

static std::mutex registry;

static void account_then_registry(Account *a) {
    std::lock_guard<std::mutex> x(a->mu);
    std::lock_guard<std::mutex> y(registry);
    a->balance++;
}

static void registry_then_account(Account *a) {
    std::lock_guard<std::mutex> y(registry);
    std::lock_guard<std::mutex> x(a->mu);
    a->balance--;
}

int main(int argc, char **argv) {
    bool inverted = argc > 1 && !strcmp(argv[1], "inverted");
    int reused = 0;
    void *last = nullptr;
    for (int i = 0; i < 50; i++) {
        Account *a = new Account;
        if (a == last)
            reused++;
        last = a;
        auto first = i % 2 == 0 ? account_then_registry : registry_then_account;
        auto second = i % 2 == 0 ? registry_then_account : account_then_registry;
        std::atomic<bool> done{false};
        std::thread t([&] {
            first(a);
            done = true;
        });
        if (inverted) {
            // Started before t is joined; waits for t's turn to end.
            std::thread u([&] {
                while (!done)
                    std::this_thread::yield();
                second(a);
            });
            u.join();
        }
        t.join();
        delete a;
    }
    std::printf("heap_reuse: %d of 50 objects at the address of the one before\n", reused);
    return 0;
}
