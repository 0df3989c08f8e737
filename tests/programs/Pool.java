import java.util.concurrent.*;
import java.util.*;
public class Pool {
    static final Object lock = new Object();
    static long total = 0;
    public static void main(String[] a) throws Exception {
        ExecutorService ex = Executors.newFixedThreadPool(4);
        ConcurrentHashMap<Integer,Integer> m = new ConcurrentHashMap<>();
        List<Future<?>> fs = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
            final int id = t;
            fs.add(ex.submit(() -> {
                for (int i = 0; i < 20000; i++) {
                    synchronized (lock) { total += i % 7; }
                    m.merge(i % 100, 1, Integer::sum);
                    if (i % 1000 == 0) { StringBuilder sb = new StringBuilder(); for (int k = 0; k < 1000; k++) sb.append(k); }
                }
            }));
        }
        for (Future<?> f : fs) f.get();
        ex.shutdown();
        ex.awaitTermination(10, TimeUnit.SECONDS);
        System.out.println("total " + total + " keys " + m.size() + " sum " + m.values().stream().mapToInt(x->x).sum());
    }
}
