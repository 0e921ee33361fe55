// Applies the project's Kafka principals (SCRAM-SHA-256 credentials) and ACLs through the Admin API, in one
// JVM: deploy/local/stack/kafka_setup.py derives them from shared/contracts/topics.py and runs this file with the
// broker's own jars (java's source-file mode, nothing to build). Idempotent: credentials are upserted, missing
// ACLs created, and ACLs of the listed principals that the list no longer holds are deleted.
//
// Usage: java -cp '<kafka libs>/*' KafkaAccess.java <admin client properties> < spec
// Spec lines:  user <name> <password>
//              allow <principal> <TOPIC|GROUP|CLUSTER> <LITERAL|PREFIXED> <resource name> <operation>

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class KafkaAccess {
    public static void main(String[] args) throws Exception {
        Properties admin = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            admin.load(in);
        }
        List<UserScramCredentialAlteration> users = new ArrayList<>();
        Set<AclBinding> wanted = new LinkedHashSet<>();
        Set<String> principals = new HashSet<>();
        BufferedReader spec = new BufferedReader(new InputStreamReader(System.in));
        for (String line = spec.readLine(); line != null; line = spec.readLine()) {
            String[] f = line.trim().split("\\s+");
            if (f[0].isEmpty()) {
                continue;
            }
            if (f[0].equals("user") && f.length == 3) {
                ScramCredentialInfo info = new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192);
                users.add(new UserScramCredentialUpsertion(f[1], info, f[2]));
            } else if (f[0].equals("allow") && f.length == 6) {
                principals.add(f[1]);
                ResourcePattern resource =
                        new ResourcePattern(ResourceType.fromString(f[2]), f[4], PatternType.fromString(f[3]));
                AccessControlEntry entry =
                        new AccessControlEntry(f[1], "*", AclOperation.fromString(f[5]), AclPermissionType.ALLOW);
                wanted.add(new AclBinding(resource, entry));
            } else {
                throw new IllegalArgumentException("not a spec line: " + f[0]);
            }
        }
        try (Admin client = Admin.create(admin)) {
            if (!users.isEmpty()) {
                client.alterUserScramCredentials(users).all().get();
            }
            Collection<AclBinding> existing = client.describeAcls(AclBindingFilter.ANY).values().get();
            List<AclBindingFilter> stale = new ArrayList<>();
            for (AclBinding binding : existing) {
                if (principals.contains(binding.entry().principal()) && !wanted.contains(binding)) {
                    stale.add(binding.toFilter());
                }
            }
            if (!stale.isEmpty()) {
                client.deleteAcls(stale).all().get();
            }
            client.createAcls(wanted).all().get();
            System.out.printf("%d principals, %d ACLs, %d stale ACLs removed%n", users.size(), wanted.size(), stale.size());
        }
    }
}
