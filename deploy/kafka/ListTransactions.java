// Prints every transaction the cluster's coordinators know, one per line: "<transactional id> <coordinator id>
// <state>" (Ongoing: open, its records neither committed nor aborted yet). aiokafka has no ListTransactions or
// DescribeTransactions; the broker's jars have the Java admin client. Run as a single-file source program:
//   deploy/kafka-cluster.sh transactions   (java -cp "<kafka libs>/*" deploy/kafka/ListTransactions.java BOOTSTRAP)
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TransactionListing;

public class ListTransactions {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        try (Admin admin = Admin.create(props)) {
            var byBroker = admin.listTransactions().allByBrokerId().get(15, TimeUnit.SECONDS);
            for (var entry : byBroker.entrySet()) {
                for (TransactionListing t : entry.getValue()) {
                    System.out.println(t.transactionalId() + " " + entry.getKey() + " " + t.state());
                }
            }
        }
    }
}
