// Times VisualVM's heap library on an HPROF file, for heapdump's HPROF
// bench (tests/benches/java_hprof.rs): opening it, its summary and
// histogram, then retained sizes (its root search and dominator tree, which
// getBiggestObjectsByRetainedSize runs over the whole heap). Prints one
// line: "open_s histogram_s retained_s instances top_retained".
//
// Usage: java -Xmx4g -cp JAR:. VisualVmRetained FILE.hprof

import java.io.File;
import java.util.List;

import org.graalvm.visualvm.lib.jfluid.heap.Heap;
import org.graalvm.visualvm.lib.jfluid.heap.HeapFactory;
import org.graalvm.visualvm.lib.jfluid.heap.Instance;
import org.graalvm.visualvm.lib.jfluid.heap.JavaClass;

public class VisualVmRetained {
    public static void main(String[] args) throws Exception {
        long start = System.nanoTime();
        Heap heap = HeapFactory.createHeap(new File(args[0]));
        long opened = System.nanoTime();
        long instances = heap.getSummary().getTotalLiveInstances();
        long classes = 0;
        for (JavaClass cls : heap.getAllClasses()) {
            classes += cls.getInstancesCount() > 0 ? 1 : 0;
        }
        long histogram = System.nanoTime();
        List<Instance> top = heap.getBiggestObjectsByRetainedSize(1);
        long retained = System.nanoTime();
        System.out.println((opened - start) / 1e9 + " " + (histogram - opened) / 1e9 + " "
                + (retained - histogram) / 1e9 + " " + instances + " "
                + (top.isEmpty() ? 0 : top.get(0).getRetainedSize()));
    }
}
