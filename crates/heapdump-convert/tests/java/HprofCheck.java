// Opens an HPROF file with VisualVM's heap library and prints what VisualVM
// sees, one JSON object per line, for heapdump-convert's tests to compare
// with heapdump's own numbers:
//
//   {"kind":"summary","instances":N,"bytes":N}
//   {"kind":"class","name":"…","count":N,"bytes":N,"instance_size":N}
//   {"kind":"root","root_kind":"…","count":N}
//   {"kind":"biggest","id":N,"class":"…","shallow":N,"retained":N}
//   {"kind":"object","id":N,"class":"…","shallow":N,"retained":N}   (--all)
//
// Usage: java -cp JAR:. HprofCheck FILE.hprof [BIGGEST] [--all]
// Compile: javac -cp org-graalvm-visualvm-lib-jfluid-heap.jar HprofCheck.java

import java.io.File;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.graalvm.visualvm.lib.jfluid.heap.Field;
import org.graalvm.visualvm.lib.jfluid.heap.GCRoot;
import org.graalvm.visualvm.lib.jfluid.heap.Heap;
import org.graalvm.visualvm.lib.jfluid.heap.HeapFactory;
import org.graalvm.visualvm.lib.jfluid.heap.HeapSummary;
import org.graalvm.visualvm.lib.jfluid.heap.Instance;
import org.graalvm.visualvm.lib.jfluid.heap.JavaClass;

public class HprofCheck {
    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: HprofCheck FILE.hprof [BIGGEST] [--all]");
            System.exit(2);
        }
        int biggest = 10;
        boolean all = false;
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("--all")) {
                all = true;
            } else {
                biggest = Integer.parseInt(args[i]);
            }
        }
        Heap heap = HeapFactory.createHeap(new File(args[0]));

        HeapSummary summary = heap.getSummary();
        System.out.println("{\"kind\":\"summary\",\"instances\":" + summary.getTotalLiveInstances()
                + ",\"bytes\":" + summary.getTotalLiveBytes() + "}");

        for (JavaClass cls : heap.getAllClasses()) {
            System.out.println("{\"kind\":\"class\",\"name\":" + quote(cls.getName())
                    + ",\"count\":" + cls.getInstancesCount()
                    + ",\"bytes\":" + cls.getAllInstancesSize()
                    + ",\"instance_size\":" + cls.getInstanceSize()
                    + ",\"fields\":" + fieldNames(cls) + "}");
        }

        Map<String, Integer> roots = new TreeMap<>();
        for (GCRoot root : heap.getGCRoots()) {
            roots.merge(root.getKind(), 1, Integer::sum);
        }
        for (Map.Entry<String, Integer> entry : roots.entrySet()) {
            System.out.println("{\"kind\":\"root\",\"root_kind\":" + quote(entry.getKey())
                    + ",\"count\":" + entry.getValue() + "}");
        }

        List<Instance> top = heap.getBiggestObjectsByRetainedSize(biggest);
        for (Instance instance : top) {
            System.out.println(line("biggest", instance));
        }

        if (all) {
            Iterator<Instance> instances = heap.getAllInstancesIterator();
            while (instances.hasNext()) {
                System.out.println(line("object", instances.next()));
            }
        }
    }

    /** The names of a class's instance fields, as a JSON array. */
    private static String fieldNames(JavaClass cls) {
        StringBuilder out = new StringBuilder("[");
        for (Object field : cls.getFields()) {
            if (out.length() > 1) {
                out.append(',');
            }
            out.append(quote(((Field) field).getName()));
        }
        return out.append(']').toString();
    }

    private static String line(String kind, Instance instance) {
        return "{\"kind\":\"" + kind + "\",\"id\":" + Long.toUnsignedString(instance.getInstanceId())
                + ",\"class\":" + quote(instance.getJavaClass().getName())
                + ",\"shallow\":" + instance.getSize()
                + ",\"retained\":" + instance.getRetainedSize() + "}";
    }

    private static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }
}
