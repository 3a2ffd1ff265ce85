#!/usr/bin/env python3
"""Independent generator of HSS/LMS (RFC 8554) test vectors for coap-fw.

Written in Python against pyhsslms (plus a small from-the-RFC reference
verifier below) rather than the Swift code, so that a Swift bug cannot be
mirrored in its own test data.

    python3 Vectors/lms/generate.py           # (re)generate, then re-check from disk
    python3 Vectors/lms/generate.py --check   # only re-check what is on disk

Output (next to this file):
    vectors.json  every vector (list of objects, format in README.md)
    h10w4.json    one valid LMS_SHA256_M32_H10 / LMOTS_SHA256_N32_W4 vector
                  (real pyhsslms key) for the speed comparison

Randomness: pyhsslms draws I, SEED and C from `randBytes`; this script
replaces that with a SHA-256 counter DRBG seeded by DRBG_SEED, and picks
leaf indexes with random.Random(DRBG_SEED), so a re-run with the same
pyhsslms version gives byte-identical JSON. Change DRBG_SEED (or pass
--seed) for fresh keys.

Every vector is checked twice before it is written and again after it is
read back from disk:
  * pyhsslms: HssPublicKey.deserialize(public).verify(message, signature)
    (an exception counts as a rejection);
  * strict_verify(): a reference verifier written from RFC 8554 section 4-6
    plus our SPEC limits (only the RFC 8554 SHA-256 M32/N32 type codes,
    1 <= L <= 8, no trailing bytes after the public key or the signature,
    signature type codes must equal the key's).
Valid vectors must be accepted by both. Invalid vectors must be rejected by
strict_verify() and by pyhsslms, except the few in PYHSSLMS_ACCEPTS, where
pyhsslms is known to be laxer than RFC 8554 / our SPEC; for those the script
asserts that pyhsslms *does* accept, so the vector really tests the check
pyhsslms lacks.
"""
import argparse
import hashlib
import json
import random
import time
from pathlib import Path

import pyhsslms
from pyhsslms import pyhsslms as _pyhsslms_module  # for the randBytes hook

HERE = Path(__file__).resolve().parent
OUT = HERE / "vectors.json"
OUT_H10W4 = HERE / "h10w4.json"
DRBG_SEED = b"coap-fw HSS/LMS test vectors, v1"

# ----------------------------------------------------------------------
# RFC 8554 constants (section 3.2, 4.1, 5.1, 8)
# ----------------------------------------------------------------------
N = M = 32                       # SHA-256, 32-byte outputs
LEN_I = 16
MAX_LEVELS = 8                   # RFC 8554 section 6 and our SPEC: 1 <= L <= 8
D_PBLC, D_MESG = b"\x80\x80", b"\x81\x81"
D_LEAF, D_INTR = b"\x82\x82", b"\x83\x83"

LMS_TYPES = {                    # code: (name, h)
    5: ("LMS_SHA256_M32_H5", 5),
    6: ("LMS_SHA256_M32_H10", 10),
    7: ("LMS_SHA256_M32_H15", 15),
    8: ("LMS_SHA256_M32_H20", 20),
    9: ("LMS_SHA256_M32_H25", 25),
}
LMOTS_TYPES = {                  # code: (name, w, p, ls)
    1: ("LMOTS_SHA256_N32_W1", 1, 265, 7),
    2: ("LMOTS_SHA256_N32_W2", 2, 133, 6),
    3: ("LMOTS_SHA256_N32_W4", 4, 67, 4),
    4: ("LMOTS_SHA256_N32_W8", 8, 34, 0),
}
LMS_CODE = {name: code for code, (name, _) in LMS_TYPES.items()}
LMOTS_CODE = {name: code for code, (name, *_rest) in LMOTS_TYPES.items()}
LMS_H = {name: h for _, (name, h) in LMS_TYPES.items()}

# Invalid vectors that pyhsslms 2.0.0 nevertheless ACCEPTS (see README).
PYHSSLMS_ACCEPTS = {
    "inv-trailing-1-byte",
    "inv-trailing-32-bytes",
    "inv-public-trailing-byte",
    "inv-too-many-levels-9",
    "inv-lmots-type-mismatch-crafted",
    "inv-public-lmots-type-mismatch",
    "inv-unsupported-m24-n24",
}


def u32(x):
    return x.to_bytes(4, "big")


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


# ----------------------------------------------------------------------
# The RFC 8554 Appendix F test cases, exactly as published.
# Transcribed from the RFC's hex listings (field boundaries dropped); the
# script asserts that pyhsslms and strict_verify() accept both, and that
# Test Case 2's published private key (Appendix F, SEED/I per level)
# regenerates its two public keys with pyhsslms.
# ----------------------------------------------------------------------
RFC_TC1_MESSAGE = (b"The powers not delegated to the United States by the "
                   b"Constitution, nor prohibited by it to the States, are "
                   b"reserved to the States respectively, or to the people.\n")
RFC_TC2_MESSAGE = (b"The enumeration in the Constitution, of certain rights, "
                   b"shall not be construed to deny or disparage others "
                   b"retained by the people.\n")
RFC_TC2_PRIVATE = [  # (SEED, I) of the top and the second-level tree
    ("558b8966c48ae9cb898b423c83443aae014a72f1b1ab5cc85cf1d892903b5439",
     "d08fabd4a2091ff0a8cb4ed834e74534"),
    ("a1c4696e2608035a886100d05cd99945eb3370731884a8235e2fb3d4d71f2547",
     "215f83b7ccb9acbcd08db97b0d04dc2b"),
]
RFC_TC1_PUBLIC = """
00000002000000050000000461a5d57d37f5e46bfb7520806b07a1b850650e3b31fe4a773ea29a07f09cf2ea30e579f0
df58ef8e298da0434cb2b878
"""
RFC_TC1_SIGNATURE = """
000000010000000500000004d32b56671d7eb98833c49b433c272586bc4a1c8a8970528ffa04b966f9426eb9965a25bf
d37f196b9073f3d4a232feb69128ec45146f86292f9dff9610a7bf95a64c7f60f6261a62043f86c70324b7707f5b4a8a
6e19c114c7be866d488778a0e05fd5c6509a6e61d559cf1a77a970de927d60c70d3de31a7fa0100994e162a2582e8ff1
b10cd99d4e8e413ef469559f7d7ed12c838342f9b9c96b83a4943d1681d84b15357ff48ca579f19f5e71f18466f2bbef
4bf660c2518eb20de2f66e3b14784269d7d876f5d35d3fbfc7039a462c716bb9f6891a7f41ad133e9e1f6d9560b960e7
777c52f060492f2d7c660e1471e07e72655562035abc9a701b473ecbc3943c6b9c4f2405a3cb8bf8a691ca51d3f6ad2f
428bab6f3a30f55dd9625563f0a75ee390e385e3ae0b906961ecf41ae073a0590c2eb6204f44831c26dd768c35b167b2
8ce8dc988a3748255230cef99ebf14e730632f27414489808afab1d1e783ed04516de012498682212b07810579b25036
5941bcc98142da13609e9768aaf65de7620dabec29eb82a17fde35af15ad238c73f81bdb8dec2fc0e7f932701099762b
37f43c4a3c20010a3d72e2f606be108d310e639f09ce7286800d9ef8a1a40281cc5a7ea98d2adc7c7400c2fe5a101552
df4e3cccfd0cbf2ddf5dc6779cbbc68fee0c3efe4ec22b83a2caa3e48e0809a0a750b73ccdcf3c79e6580c154f8a58f7
f24335eec5c5eb5e0cf01dcf4439424095fceb077f66ded5bec73b27c5b9f64a2a9af2f07c05e99e5cf80f00252e39db
32f6c19674f190c9fbc506d826857713afd2ca6bb85cd8c107347552f30575a5417816ab4db3f603f2df56fbc413e7d0
acd8bdd81352b2471fc1bc4f1ef296fea1220403466b1afe78b94f7ecf7cc62fb92be14f18c2192384ebceaf8801afdf
947f698ce9c6ceb696ed70e9e87b0144417e8d7baf25eb5f70f09f016fc925b4db048ab8d8cb2a661ce3b57ada67571f
5dd546fc22cb1f97e0ebd1a65926b1234fd04f171cf469c76b884cf3115cce6f792cc84e36da58960c5f1d760f32c12f
aef477e94c92eb75625b6a371efc72d60ca5e908b3a7dd69fef0249150e3eebdfed39cbdc3ce9704882a2072c75e1352
7b7a581a556168783dc1e97545e31865ddc46b3c957835da252bb7328d3ee2062445dfb85ef8c35f8e1f3371af34023c
ef626e0af1e0bc017351aae2ab8f5c612ead0b729a1d059d02bfe18efa971b7300e882360a93b025ff97e9e0eec0f3f3
f13039a17f88b0cf808f488431606cb13f9241f40f44e537d302c64a4f1f4ab949b9feefadcb71ab50ef27d6d6ca8510
f150c85fb525bf25703df7209b6066f09c37280d59128d2f0f637c7d7d7fad4ed1c1ea04e628d221e3d8db77b7c878c9
411cafc5071a34a00f4cf07738912753dfce48f07576f0d4f94f42c6d76f7ce973e9367095ba7e9a3649b7f461d9f9ac
1332a4d1044c96aefee67676401b64457c54d65fef6500c59cdfb69af7b6dddfcb0f086278dd8ad0686078dfb0f3f79c
d893d314168648499898fbc0ced5f95b74e8ff14d735cdea968bee7400000005d8b8112f9200a5e50c4a262165bd342c
d800b8496810bc716277435ac376728d129ac6eda839a6f357b5a04387c5ce97382a78f2a4372917eefcbf93f63bb591
12f5dbe400bd49e4501e859f885bf0736e90a509b30a26bfac8c17b5991c157eb5971115aa39efd8d564a6b90282c316
8af2d30ef89d51bf14654510a12b8a144cca1848cf7da59cc2b3d9d0692dd2a20ba3863480e25b1b85ee860c62bf5136
0000000500000004d2f14ff6346af964569f7d6cb880a1b66c5004917da6eafe4d9ef6c6407b3db0e5485b122d9ebe15
cda93cfec582d7ab0000000a000000040703c491e7558b35011ece3592eaa5da4d918786771233e8353bc4f62323185c
95cae05b899e35dffd717054706209988ebfdf6e37960bb5c38d7657e8bffeef9bc042da4b4525650485c66d0ce19b31
7587c6ba4bffcc428e25d08931e72dfb6a120c5612344258b85efdb7db1db9e1865a73caf96557eb39ed3e3f426933ac
9eeddb03a1d2374af7bf77185577456237f9de2d60113c23f846df26fa942008a698994c0827d90e86d43e0df7f4bfcd
b09b86a373b98288b7094ad81a0185ac100e4f2c5fc38c003c1ab6fea479eb2f5ebe48f584d7159b8ada03586e65ad9c
969f6aecbfe44cf356888a7b15a3ff074f771760b26f9c04884ee1faa329fbf4e61af23aee7fa5d4d9a5dfcf43c4c26c
e8aea2ce8a2990d7ba7b57108b47dabfbeadb2b25b3cacc1ac0cef346cbb90fb044beee4fac2603a442bdf7e507243b7
319c9944b1586e899d431c7f91bcccc8690dbf59b28386b2315f3d36ef2eaa3cf30b2b51f48b71b003dfb08249484201
043f65f5a3ef6bbd61ddfee81aca9ce60081262a00000480dcbc9a3da6fbef5c1c0a55e48a0e729f9184fcb1407c3152
9db268f6fe50032a363c9801306837fafabdf957fd97eafc80dbd165e435d0e2dfd836a28b354023924b6fb7e48bc0b3
ed95eea64c2d402f4d734c8dc26f3ac591825daef01eae3c38e3328d00a77dc657034f287ccb0f0e1c9a7cbdc828f627
205e4737b84b58376551d44c12c3c215c812a0970789c83de51d6ad787271963327f0a5fbb6b5907dec02c9a90934af5
a1c63b72c82653605d1dcce51596b3c2b45696689f2eb382007497557692caac4d57b5de9f5569bc2ad0137fd47fb47e
664fcb6db4971f5b3e07aceda9ac130e9f38182de994cff192ec0e82fd6d4cb7f3fe00812589b7a7ce51544045643301
6b84a59bec6619a1c6c0b37dd1450ed4f2d8b584410ceda8025f5d2d8dd0d2176fc1cf2cc06fa8c82bed4d944e71339e
ce780fd025bd41ec34ebff9d4270a3224e019fcb444474d482fd2dbe75efb20389cc10cd600abb54c47ede93e08c114e
db04117d714dc1d525e11bed8756192f929d15462b939ff3f52f2252da2ed64d8fae88818b1efa2c7b08c8794fb1b214
aa233db3162833141ea4383f1a6f120be1db82ce3630b3429114463157a64e91234d475e2f79cbf05e4db6a9407d72c6
bff7d1198b5c4d6aad2831db61274993715a0182c7dc8089e32c8531deed4f7431c07c02195eba2ef91efb5613c37af7
ae0c066babc69369700e1dd26eddc0d216c781d56e4ce47e3303fa73007ff7b949ef23be2aa4dbf25206fe45c20dd888
395b2526391a724996a44156beac808212858792bf8e74cba49dee5e8812e019da87454bff9e847ed83db07af3137430
82f880a278f682c2bd0ad6887cb59f652e155987d61bbf6a88d36ee93b6072e6656d9ccbaae3d655852e38deb3a2dcf8
058dc9fb6f2ab3d3b3539eb77b248a661091d05eb6e2f297774fe6053598457cc61908318de4b826f0fc86d4bb117d33
e865aa805009cc2918d9c2f840c4da43a703ad9f5b5806163d7161696b5a0adc00000005d5c0d1bebb06048ed6fe2ef2
c6cef305b3ed633941ebc8b3bec9738754cddd60e1920ada52f43d055b5031cee6192520d6a5115514851ce7fd448d4a
39fae2ab2335b525f484e9b40d6a4a969394843bdcf6d14c48e8015e08ab92662c05c6e9f90b65a7a6201689999f32bf
d368e5e3ec9cb70ac7b8399003f175c40885081a09ab3034911fe125631051df0408b3946b0bde790911e8978ba07dd5
6c73e7ee
"""
RFC_TC2_PUBLIC = """
000000020000000600000003d08fabd4a2091ff0a8cb4ed834e7453432a58885cd9ba0431235466bff9651c6c9212440
4d45fa53cf161c28f1ad5a8e
"""
RFC_TC2_SIGNATURE = """
0000000100000003000000033d46bee8660f8f215d3f96408a7a64cf1c4da02b63a55f62c666ef5707a914ce0674e8cb
7a55f0c48d484f31f3aa4af9719a74f22cf823b94431d01c926e2a76bb71226d279700ec81c9e95fb11a0d10d065279a
5796e265ae17737c44eb8c594508e126a9a7870bf4360820bdeb9a01d9693779e416828e75bddd7d8c70d50a0ac8ba39
810909d445f44cb5bb58de737e60cb4345302786ef2c6b14af212ca19edeaa3bfcfe8baa6621ce88480df2371dd37add
732c9de4ea2ce0dffa53c92649a18d39a50788f4652987f226a1d48168205df6ae7c58e049a25d4907edc1aa90da8aa5
e5f7671773e941d8055360215c6b60dd35463cf2240a9c06d694e9cb54e7b1e1bf494d0d1a28c0d31acc75161f4f485d
fd3cb9578e836ec2dc722f37ed30872e07f2b8bd0374eb57d22c614e09150f6c0d8774a39a6e168211035dc52988ab46
eaca9ec597fb18b4936e66ef2f0df26e8d1e34da28cbb3af752313720c7b345434f72d65314328bbb030d0f0f6d5e47b
28ea91008fb11b05017705a8be3b2adb83c60a54f9d1d1b2f476f9e393eb5695203d2ba6ad815e6a111ea293dcc21033
f9453d49c8e5a6387f588b1ea4f706217c151e05f55a6eb7997be09d56a326a32f9cba1fbe1c07bb49fa04cecf9df1a1
b815483c75d7a27cc88ad1b1238e5ea986b53e087045723ce16187eda22e33b2c70709e53251025abde8939645fc8c06
93e97763928f00b2e3c75af3942d8ddaee81b59a6f1f67efda0ef81d11873b59137f67800b35e81b01563d187c4a1575
a1acb92d087b517a8833383f05d357ef4678de0c57ff9f1b2da61dfde5d88318bcdde4d9061cc75c2de3cd4740dd7739
ca3ef66f1930026f47d9ebaa713b07176f76f953e1c2e7f8f271a6ca375dbfb83d719b1635a7d8a13891957944b1c29b
b101913e166e11bd5f34186fa6c0a555c9026b256a6860f4866bd6d0b5bf90627086c6149133f8282ce6c9b362244244
3d5eca959d6c14ca8389d12c4068b503e4e3c39b635bea245d9d05a2558f249c9661c0427d2e489ca5b5dde220a90333
f4862aec793223c781997da98266c12c50ea28b2c438e7a379eb106eca0c7fd6006e9bf612f3ea0a454ba3bdb76e8027
992e60de01e9094fddeb3349883914fb17a9621ab929d970d101e45f8278c14b032bcab02bd15692d21b6c5c204abbf0
77d465553bd6eda645e6c3065d33b10d518a61e15ed0f092c32226281a29c8a0f50cde0a8c66236e29c2f310a375cebd
a1dc6bb9a1a01dae6c7aba8ebedc6371a7d52aacb955f83bd6e4f84d2949dcc198fb77c7e5cdf6040b0f84faf82808bf
985577f0a2acf2ec7ed7c0b0ae8a270e951743ff23e0b2dd12e9c3c828fb5598a22461af94d568f29240ba2820c4591f
71c088f96e095dd98beae456579ebbba36f6d9ca2613d1c26eee4d8c73217ac5962b5f3147b492e8831597fd89b64aa7
fde82e1974d2f6779504dc21435eb3109350756b9fdabe1c6f368081bd40b27ebcb9819a75d7df8bb07bb05db1bab705
a4b7e37125186339464ad8faaa4f052cc1272919fde3e025bb64aa8e0eb1fcbfcc25acb5f718ce4f7c2182fb393a1814
b0e942490e52d3bca817b2b26e90d4c9b0cc38608a6cef5eb153af0858acc867c9922aed43bb67d7b33acc519313d28d
41a5c6fe6cf3595dd5ee63f0a4c4065a083590b275788bee7ad875a7f88dd73720708c6c6c0ecf1f43bbaadae6f20855
7fdc07bd4ed91f88ce4c0de842761c70c186bfdafafc444834bd3418be4253a71eaf41d718753ad07754ca3effd5960b
0336981795721426803599ed5b2b7516920efcbe32ada4bcf6c73bd29e3fa152d9adeca36020fdeeee1b739521d3ea8c
0da497003df1513897b0f54794a873670b8d93bcca2ae47e64424b7423e1f078d9554bb5232cc6de8aae9b83fa5b9510
beb39ccf4b4e1d9c0f19d5e17f58e5b8705d9a6837a7d9bf99cd13387af256a8491671f1f2f22af253bcff54b673199b
db7d05d81064ef05f80f0153d0be7919684b23da8d42ff3effdb7ca0985033f389181f47659138003d712b5ec0a614d3
1cc7487f52de8664916af79c98456b2c94a8038083db55391e3475862250274a1de2584fec975fb09536792cfbfcf619
2856cc76eb5b13dc4709e2f7301ddff26ec1b23de2d188c999166c74e1e14bbc15f457cf4e471ae13dcbdd9c50f4d646
fc6278e8fe7eb6cb5c94100fa870187380b777ed19d7868fd8ca7ceb7fa7d5cc861c5bdac98e7495eb0a2ceec1924ae9
79f44c5390ebedddc65d6ec11287d978b8df064219bc5679f7d7b264a76ff272b2ac9f2f7cfc9fdcfb6a51428240027a
fd9d52a79b647c90c2709e060ed70f87299dd798d68f4fadd3da6c51d839f851f98f67840b964ebe73f8cec41572538e
c6bc131034ca2894eb736b3bda93d9f5f6fa6f6c0f03ce43362b8414940355fb54d3dfdd03633ae108f3de3ebc85a3ff
51efeea3bc2cf27e1658f1789ee612c83d0f5fd56f7cd071930e2946beeecaa04dccea9f97786001475e0294bc2852f6
2eb5d39bb9fbeef75916efe44a662ecae37ede27e9d6eadfdeb8f8b2b2dbccbf96fa6dbaf7321fb0e701f4d429c2f4dc
d153a2742574126e5eaccc77686acf6e3ee48f423766e0fc466810a905ff5453ec99897b56bc55dd49b991142f65043f
2d744eeb935ba7f4ef23cf80cc5a8a335d3619d781e7454826df720eec82e06034c44699b5f0c44a8787752e057fa341
9b5bb0e25d30981e41cb1361322dba8f69931cf42fad3f3bce6ded5b8bfc3d20a2148861b2afc14562ddd27f12897abf
0685288dcc5c4982f826026846a24bf77e383c7aacab1ab692b29ed8c018a65f3dc2b87ff619a633c41b4fadb1c78725
c1f8f922f6009787b1964247df0136b1bc614ab575c59a16d089917bd4a8b6f04d95c581279a139be09fcf6e98a470a0
bceca191fce476f9370021cbc05518a7efd35d89d8577c990a5e19961ba16203c959c91829ba7497cffcbb4b29454645
4fa5388a23a22e805a5ca35f956598848bda678615fec28afd5da61a00000006b326493313053ced3876db9d23714818
1b7173bc7d042cefb4dbe94d2e58cd21a769db4657a103279ba8ef3a629ca84ee836172a9c50e51f45581741cf808315
0b491cb4ecbbabec128e7c81a46e62a67b57640a0a78be1cbf7dd9d419a10cd8686d16621a80816bfdb5bdc56211d72c
a70b81f1117d129529a7570cf79cf52a7028a48538ecdd3b38d3d5d62d26246595c4fb73a525a5ed2c30524ebb1d8cc8
2e0c19bc4977c6898ff95fd3d310b0bae71696cef93c6a552456bf96e9d075e383bb7543c675842bafbfc7cdb88483b3
276c29d4f0a341c2d406e40d4653b7e4d045851acf6a0a0ea9c710b805cced4635ee8c107362f0fc8d80c14d0ac49c51
6703d26d14752f34c1c0d2c4247581c18c2cf4de48e9ce949be7c888e9caebe4a415e291fd107d21dc1f084b11582082
49f28f4f7c7e931ba7b3bd0d824a45700000000500000004215f83b7ccb9acbcd08db97b0d04dc2ba1cd035833e0e900
59603f26e07ad2aad152338e7a5e5984bcd5f7bb4eba40b700000004000000040eb1ed54a2460d512388cad533138d24
0534e97b1e82d33bd927d201dfc24ebb11b3649023696f85150b189e50c00e98850ac343a77b3638319c347d7310269d
3b7714fa406b8c35b021d54d4fdada7b9ce5d4ba5b06719e72aaf58c5aae7aca057aa0e2e74e7dcfd17a0823429db629
65b7d563c57b4cec942cc865e29c1dad83cac8b4d61aacc457f336e6a10b66323f5887bf3523dfcadee158503bfaa89d
c6bf59daa82afd2b5ebb2a9ca6572a6067cee7c327e9039b3b6ea6a1edc7fdc3df927aade10c1c9f2d5ff446450d2a39
98d0f9f6202b5e07c3f97d2458c69d3c8190643978d7a7f4d64e97e3f1c4a08a7c5bc03fd55682c017e2907eab07e5bb
2f190143475a6043d5e6d5263471f4eecf6e2575fbc6ff37edfa249d6cda1a09f797fd5a3cd53a066700f45863f04b6c
8a58cfd341241e002d0d2c0217472bf18b636ae547c1771368d9f317835c9b0ef430b3df4034f6af00d0da44f4af7800
bc7a5cf8a5abdb12dc718b559b74cab9090e33cc58a955300981c420c4da8ffd67df540890a062fe40dba8b2c1c548ce
d22473219c534911d48ccaabfb71bc71862f4a24ebd376d288fd4e6fb06ed8705787c5fedc813cd2697e5b1aac1ced45
767b14ce88409eaebb601a93559aae893e143d1c395bc326da821d79a9ed41dcfbe549147f71c092f4f3ac522b5cc572
90706650487bae9bb5671ecc9ccc2ce51ead87ac01985268521222fb9057df7ed41810b5ef0d4f7cc67368c90f573b1a
c2ce956c365ed38e893ce7b2fae15d3685a3df2fa3d4cc098fa57dd60d2c9754a8ade980ad0f93f6787075c3f680a2ba
1936a8c61d1af52ab7e21f416be09d2a8d64c3d3d8582968c2839902229f85aee297e717c094c8df4a23bb5db658dd37
7bf0f4ff3ffd8fba5e383a48574802ed545bbe7a6b4753533353d73706067640135a7ce517279cd683039747d218647c
86e097b0daa2872d54b8f3e5085987629547b830d8118161b65079fe7bc59a99e9c3c7380e3e70b7138fe5d9be255150
2b698d09ae193972f27d40f38dea264a0126e637d74ae4c92a6249fa103436d3eb0d4029ac712bfc7a5eacbdd7518d6d
4fe903a5ae65527cd65bb0d4e9925ca24fd7214dc617c150544e423f450c99ce51ac8005d33acd74f1bed3b17b7266a4
a3bb86da7eba80b101e15cb79de9a207852cf91249ef480619ff2af8cabca83125d1faa94cbb0a03a906f683b3f47a97
c871fd513e510a7a25f283b196075778496152a91c2bf9da76ebe089f4654877f2d586ae7149c406e663eadeb2b5c7e8
2429b9e8cb4834c83464f079995332e4b3c8f5a72bb4b8c6f74b0d45dc6c1f79952c0b7420df525e37c15377b5f09843
19c3993921e5ccd97e097592064530d33de3afad5733cbe7703c5296263f77342efbf5a04755b0b3c997c4328463e84c
aa2de3ffdcd297baaaacd7ae646e44b5c0f16044df38fabd296a47b3a838a913982fb2e370c078edb042c84db34ce36b
46ccb76460a690cc86c302457dd1cde197ec8075e82b393d542075134e2a17ee70a5e187075d03ae3c853cff60729ba4
000000054de1f6965bdabc676c5a4dc7c35f97f82cb0e31c68d04f1dad96314ff09e6b3de96aeee300d1f68bf1bca9fc
58e4032336cd819aaf578744e50d1357a0e4286704d341aa0a337b19fe4bc43c2e79964d4f351089f2e0e41c7c43ae0d
49e7f404b0f75be80ea3af098c9752420a8ac0ea2bbb1f4eeba05238aef0d8ce63f0c6e5e4041d95398a6f7f3e0ee97c
c1591849d4ed236338b147abde9f51ef9fd4e1c1
"""


def unhex(block):
    return bytes.fromhex("".join(block.split()))


# ----------------------------------------------------------------------
# Reference verifier, written from RFC 8554 (not from pyhsslms)
# ----------------------------------------------------------------------
class Invalid(Exception):
    pass


def r32(buf, off):
    if off + 4 > len(buf):
        raise Invalid("truncated")
    return int.from_bytes(buf[off:off + 4], "big")


def coef(s, i, w):
    return (s[(i * w) // 8] >> (8 - (w * (i % (8 // w)) + w))) & ((1 << w) - 1)


def checksum(q, w, ls):
    total = sum((1 << w) - 1 - coef(q, i, w) for i in range(N * 8 // w))
    return ((total << ls) & 0xFFFF).to_bytes(2, "big")


def parse_lms_public(buf, off):
    """LMS public key (section 5.3): type || otstype || I || T[1]."""
    lms, ots = r32(buf, off), r32(buf, off + 4)
    if lms not in LMS_TYPES:
        raise Invalid("unknown LMS type")
    if ots not in LMOTS_TYPES:
        raise Invalid("unknown LM-OTS type")
    end = off + 8 + LEN_I + M
    if end > len(buf):
        raise Invalid("truncated")
    return {"off": off, "lms": lms, "ots": ots, "I": buf[off + 8:off + 24],
            "T1": buf[off + 24:end], "raw": buf[off:end]}, end


def parse_lms_signature(buf, off):
    """LMS signature (section 5.4): q || lmots_signature || type || path.
    Lengths follow the type codes inside the signature (Algorithm 6a step 2,
    RFC 8554 section 6.3 parsing); agreement with the key is checked later."""
    q, ots = r32(buf, off), r32(buf, off + 4)
    if ots not in LMOTS_TYPES:
        raise Invalid("unknown LM-OTS type")
    _, w, p, ls = LMOTS_TYPES[ots]
    c_off = off + 8
    y_off = c_off + N
    lms_off = y_off + p * N
    lms = r32(buf, lms_off)
    if lms not in LMS_TYPES:
        raise Invalid("unknown LMS type")
    h = LMS_TYPES[lms][1]
    path_off = lms_off + 4
    end = path_off + h * M
    if end > len(buf):
        raise Invalid("truncated")
    return {"off": off, "q": q, "ots": ots, "lms": lms, "h": h, "p": p,
            "C_off": c_off, "y_off": y_off, "lms_off": lms_off,
            "path_off": path_off, "end": end,
            "C": buf[c_off:y_off],
            "y": [buf[y_off + i * N:y_off + (i + 1) * N] for i in range(p)],
            "path": [buf[path_off + i * M:path_off + (i + 1) * M] for i in range(h)]}, end


def parse_hss_signature(sig, max_levels=MAX_LEVELS):
    """HSS signature (section 6.2): Nspk || (sig[i] || pub[i+1])* || sig[Nspk].
    Returns ([{'sig':..., 'pub':...}, ..., {'sig':...}], end offset)."""
    nspk = r32(sig, 0)
    if max_levels is not None and nspk + 1 > max_levels:
        raise Invalid("too many levels")
    off, levels = 4, []
    for _ in range(nspk):
        s, off = parse_lms_signature(sig, off)
        p, off = parse_lms_public(sig, off)
        levels.append({"sig": s, "pub": p})
    s, off = parse_lms_signature(sig, off)
    levels.append({"sig": s})
    return levels, off


def lmots_candidate(I, q, ots, C, y, message):
    """Algorithm 4b: candidate LM-OTS public key."""
    _, w, p, ls = LMOTS_TYPES[ots]
    Q = sha256(I, u32(q), D_MESG, C, message)
    V = Q + checksum(Q, w, ls)
    kh = hashlib.sha256(I + u32(q) + D_PBLC)
    for i in range(p):
        tmp = y[i]
        for j in range(coef(V, i, w), (1 << w) - 1):
            tmp = sha256(I, u32(q), i.to_bytes(2, "big"), bytes([j]), tmp)
        kh.update(tmp)
    return kh.digest()


def lms_root(I, q, h, K, path):
    """Algorithm 6a step 4: climb from leaf 2^h + q (OTS public key K) to T[1]."""
    node = (1 << h) + q
    tmp = sha256(I, u32(node), D_LEAF, K)
    for pv in path:
        if node % 2:
            tmp = sha256(I, u32(node // 2), D_INTR, pv, tmp)
        else:
            tmp = sha256(I, u32(node // 2), D_INTR, tmp, pv)
        node //= 2
    return tmp


def lms_verify(pub, message, s):
    """Algorithm 6a, including its type checks."""
    if s["ots"] != pub["ots"] or s["lms"] != pub["lms"]:
        return False
    if s["q"] >= (1 << s["h"]):
        return False
    Kc = lmots_candidate(pub["I"], s["q"], s["ots"], s["C"], s["y"], message)
    return lms_root(pub["I"], s["q"], s["h"], Kc, s["path"]) == pub["T1"]


def strict_verify(public, message, sig):
    """Algorithm 6 (HSS) with our SPEC's limits. True only if valid."""
    try:
        if len(public) != 4 + 8 + LEN_I + M:
            raise Invalid("public key length")
        L = r32(public, 0)
        if not 1 <= L <= MAX_LEVELS:
            raise Invalid("levels out of range")
        key, _ = parse_lms_public(public, 4)
        if r32(sig, 0) + 1 != L:
            raise Invalid("Nspk + 1 != L")
        levels, end = parse_hss_signature(sig)
        if end != len(sig):
            raise Invalid("trailing bytes")
        for lvl in levels[:-1]:
            if not lms_verify(key, lvl["pub"]["raw"], lvl["sig"]):
                return False
            key = lvl["pub"]
        return lms_verify(key, message, levels[-1]["sig"])
    except Invalid:
        return False


def pyhsslms_accepts(public, message, sig):
    try:
        return bool(pyhsslms.HssPublicKey.deserialize(public).verify(message, sig))
    except Exception:  # pyhsslms raises ValueError (and others) on malformed input
        return False


# ----------------------------------------------------------------------
# Deterministic randomness
# ----------------------------------------------------------------------
class Drbg:
    """SHA-256 in counter mode; stands in for pyhsslms' randBytes."""

    def __init__(self, seed):
        self.key = hashlib.sha256(b"drbg" + seed).digest()
        self.counter = 0

    def __call__(self, n):
        out = b""
        while len(out) < n:
            out += sha256(self.key, self.counter.to_bytes(8, "big"))
            self.counter += 1
        return out[:n]


# ----------------------------------------------------------------------
# Vector construction
# ----------------------------------------------------------------------
class Builder:
    def __init__(self, seed):
        self.drbg = Drbg(seed)
        self.rng = random.Random(seed)
        _pyhsslms_module.randBytes = self.drbg   # pyhsslms looks it up at call time
        self.vectors = []

    # -- bookkeeping ---------------------------------------------------
    def add(self, name, source, params, public, message, signature, valid, why=""):
        assert valid == (why == ""), name
        self.vectors.append({
            "name": name, "source": source, "levels": len(params),
            "lms": [p[0] for p in params], "lmots": [p[1] for p in params],
            "public": public.hex(), "message": message.hex(),
            "signature": signature.hex(), "valid": valid, "why": why})
        return self.vectors[-1]

    @staticmethod
    def msg(name):
        return f"coap-fw HSS/LMS test message: {name}".encode()

    # -- key material ----------------------------------------------------
    def lms_key(self, lms, lmots):
        return pyhsslms.LmsPrivateKey(lms_type=u32(LMS_CODE[lms]),
                                      lmots_type=u32(LMOTS_CODE[lmots]))

    def sign_at(self, key, message, q):
        key.q = q            # pyhsslms keeps the next leaf in LmsPrivateKey.q
        return key.sign(message)

    def single_real(self, lms, lmots, message, q=None, key=None):
        """Single-level HSS (L=1) with a real, fully generated pyhsslms tree."""
        key = key or self.lms_key(lms, lmots)
        if q is None:
            q = self.rng.randrange(1 << LMS_H[lms])
        public = u32(1) + key.publicKey().serialize()
        return public, u32(0) + self.sign_at(key, message, q), key

    def single_crafted(self, lms, lmots, message, q=None, sig_lmots=None):
        """Single-level HSS whose tree is never built: one real LM-OTS key
        pair at leaf q (pyhsslms.LmotsPrivateKey), a random authentication
        path, and T[1] computed from them as Algorithm 6a does.
        sig_lmots: use a different LM-OTS type in the leaf/signature than the
        one the public key declares (for the type-mismatch vector)."""
        h = LMS_H[lms]
        if q is None:
            q = self.rng.randrange(1 << h)
        I, seed = self.drbg(LEN_I), self.drbg(N)
        ots_code = LMOTS_CODE[sig_lmots or lmots]
        ots = pyhsslms.LmotsPrivateKey(I=I, q=u32(q), SEED=seed, lmots_type=u32(ots_code))
        K = ots.publicKey().K
        ots_sig = ots.sign(message)
        path = [self.drbg(M) for _ in range(h)]
        root = lms_root(I, q, h, K, path)
        public = u32(1) + u32(LMS_CODE[lms]) + u32(LMOTS_CODE[lmots]) + I + root
        sig = u32(0) + u32(q) + ots_sig + u32(LMS_CODE[lms]) + b"".join(path)
        return public, sig

    def chain(self, params, message, qs=None):
        """HSS from pyhsslms LMS trees, one per level, each with its own
        parameter set; leaf indexes random unless given."""
        keys = [self.lms_key(lms, lmots) for lms, lmots in params]
        if qs is None:
            qs = [self.rng.randrange(1 << LMS_H[lms]) for lms, _ in params]
        sig = u32(len(keys) - 1)
        for i in range(len(keys) - 1):
            child = keys[i + 1].publicKey().serialize()
            sig += self.sign_at(keys[i], child, qs[i]) + child
        sig += self.sign_at(keys[-1], message, qs[-1])
        return u32(len(keys)) + keys[0].publicKey().serialize(), sig

    def hss_private_key(self, levels, lms, lmots, message, dummies):
        """HSS through pyhsslms' own HssPrivateKey, after `dummies` signatures
        so that the leaf indexes are not all 0 (35 dummies roll the H5 bottom
        tree over once, so its parent signs at q=1 and the bottom at q=3)."""
        prv = pyhsslms.HssPrivateKey(levels=levels, lms_type=u32(LMS_CODE[lms]),
                                     lmots_type=u32(LMOTS_CODE[lmots]))
        for i in range(dummies):
            prv.sign(b"dummy %d" % i)
        return prv.publicKey().serialize(), prv.sign(message)


def flip(buf, off, mask=0x01):
    b = bytearray(buf)
    b[off] ^= mask
    return bytes(b)


def put32(buf, off, value):
    return buf[:off] + u32(value) + buf[off + 4:]


def build(seed):
    B = Builder(seed)
    t0 = time.time()

    # 1. RFC 8554 Appendix F -------------------------------------------
    tc1_pub, tc1_sig = unhex(RFC_TC1_PUBLIC), unhex(RFC_TC1_SIGNATURE)
    tc2_pub, tc2_sig = unhex(RFC_TC2_PUBLIC), unhex(RFC_TC2_SIGNATURE)
    assert (len(tc1_pub), len(tc1_sig), len(tc2_pub), len(tc2_sig)) == (60, 2644, 60, 3860)
    top = pyhsslms.LmsPrivateKey(lms_type=u32(6), lmots_type=u32(3),
                                 SEED=bytes.fromhex(RFC_TC2_PRIVATE[0][0]),
                                 I=bytes.fromhex(RFC_TC2_PRIVATE[0][1]))
    second = pyhsslms.LmsPrivateKey(lms_type=u32(5), lmots_type=u32(4),
                                    SEED=bytes.fromhex(RFC_TC2_PRIVATE[1][0]),
                                    I=bytes.fromhex(RFC_TC2_PRIVATE[1][1]))
    assert u32(2) + top.publicKey().serialize() == tc2_pub, "TC2 top key"
    assert second.publicKey().serialize() in tc2_sig, "TC2 second-level key"
    h5w8 = ("LMS_SHA256_M32_H5", "LMOTS_SHA256_N32_W8")
    h10w4 = ("LMS_SHA256_M32_H10", "LMOTS_SHA256_N32_W4")
    B.add("rfc8554-test-case-1", "rfc8554", [h5w8, h5w8], tc1_pub, RFC_TC1_MESSAGE, tc1_sig, True)
    B.add("rfc8554-test-case-2", "rfc8554", [h10w4, h5w8], tc2_pub, RFC_TC2_MESSAGE, tc2_sig, True)
    print(f"  rfc8554 done       {time.time() - t0:6.1f}s")

    # 2. every single-level parameter set ---------------------------------
    h10w4_vector = None
    for lms in LMS_CODE:
        for lmots in LMOTS_CODE:
            short = f"lms-h{LMS_H[lms]}-w{LMOTS_TYPES[LMOTS_CODE[lmots]][1]}"
            message = B.msg(short)
            if LMS_H[lms] <= 10:
                public, sig, _ = B.single_real(lms, lmots, message)
                v = B.add(short, "pyhsslms", [(lms, lmots)], public, message, sig, True)
                if (lms, lmots) == h10w4:
                    h10w4_vector = v
            else:
                public, sig = B.single_crafted(lms, lmots, message)
                B.add(short + "-crafted", "crafted", [(lms, lmots)], public, message, sig, True)
    print(f"  single-level done  {time.time() - t0:6.1f}s")

    # edge leaves and messages
    key = B.lms_key(*h5w8)
    public, sig, _ = B.single_real(*h5w8, B.msg("q0"), q=0, key=key)
    B.add("lms-h5-w8-first-leaf", "pyhsslms", [h5w8], public, B.msg("q0"), sig, True)
    public, sig, _ = B.single_real(*h5w8, B.msg("q31"), q=31, key=key)
    B.add("lms-h5-w8-last-leaf", "pyhsslms", [h5w8], public, B.msg("q31"), sig, True)
    public, sig, _ = B.single_real(*h5w8, b"", q=7, key=key)
    B.add("lms-h5-w8-empty-message", "pyhsslms", [h5w8], public, b"", sig, True)
    big = bytes((7 * i + 3) % 256 for i in range(3000))
    public, sig, _ = B.single_real(*h5w8, big, q=8, key=key)
    B.add("lms-h5-w8-3000-byte-message", "pyhsslms", [h5w8], public, big, sig, True)
    h25w8 = ("LMS_SHA256_M32_H25", "LMOTS_SHA256_N32_W8")
    public, sig = B.single_crafted(*h25w8, B.msg("h25 last"), q=(1 << 25) - 1)
    B.add("lms-h25-w8-last-leaf-crafted", "crafted", [h25w8], public, B.msg("h25 last"), sig, True)
    h20w4 = ("LMS_SHA256_M32_H20", "LMOTS_SHA256_N32_W4")
    public, sig = B.single_crafted(*h20w4, B.msg("h20 first"), q=0)
    B.add("lms-h20-w4-first-leaf-crafted", "crafted", [h20w4], public, B.msg("h20 first"), sig, True)

    # 3. multi-level HSS --------------------------------------------------
    for levels in range(1, 9):
        name = f"hss-l{levels}-h5-w8"
        public, sig = B.hss_private_key(levels, *h5w8, B.msg(name), 3 if levels == 1 else 35)
        B.add(name, "pyhsslms", [h5w8] * levels, public, B.msg(name), sig, True)
    mixed = [h10w4, h5w8, ("LMS_SHA256_M32_H5", "LMOTS_SHA256_N32_W1")]
    public, sig = B.chain(mixed, B.msg("mixed"))
    B.add("hss-l3-mixed-h10w4-h5w8-h5w1", "pyhsslms", mixed, public, B.msg("mixed"), sig, True)
    print(f"  multi-level done   {time.time() - t0:6.1f}s")

    # 4. invalid ----------------------------------------------------------
    two = [h5w8, h5w8]
    msg2 = B.msg("base two-level")
    pub2, sig2 = B.chain(two, msg2)
    assert strict_verify(pub2, msg2, sig2) and pyhsslms_accepts(pub2, msg2, sig2)
    lv, _ = parse_hss_signature(sig2)
    topsig, embedded, bottom = lv[0]["sig"], lv[0]["pub"], lv[1]["sig"]

    def bad(name, why, public=pub2, message=msg2, signature=sig2, params=two, source="pyhsslms"):
        B.add(name, source, params, public, message, signature, False, why)

    # wrong leaf: q moved to another valid index
    bad("inv-wrong-leaf-bottom", "wrong-leaf",
        signature=put32(sig2, bottom["off"], (bottom["q"] + 1) % 32))
    bad("inv-wrong-leaf-top", "wrong-leaf",
        signature=put32(sig2, topsig["off"], topsig["q"] ^ 1))

    # level count
    bad("inv-level-count-public-L1", "wrong-level-count", public=put32(pub2, 0, 1))
    bad("inv-level-count-public-L3", "wrong-level-count", public=put32(pub2, 0, 3))
    bad("inv-level-count-public-L0", "wrong-level-count", public=put32(pub2, 0, 0))
    bad("inv-level-count-nspk0", "wrong-level-count", signature=put32(sig2, 0, 0))
    bad("inv-level-count-nspk-huge", "wrong-level-count", signature=put32(sig2, 0, 0xFFFFFFFF))
    bad("inv-rfc-tc2-level-count-public-L1", "wrong-level-count", public=put32(tc2_pub, 0, 1),
        message=RFC_TC2_MESSAGE, signature=tc2_sig, params=[h10w4, h5w8], source="rfc8554")

    # truncation
    cuts = [("1-byte", len(sig2) - 1),
            ("half-last-path", len(sig2) - M // 2),
            ("mid-bottom-y", bottom["y_off"] + 5 * N + 7),
            ("after-top-signature", topsig["end"]),
            ("mid-embedded-public", embedded["off"] + 20),
            ("nspk-only", 4),
            ("3-bytes", 3),
            ("empty", 0)]
    for label, cut in cuts:
        bad(f"inv-truncated-{label}", "truncated", signature=sig2[:cut])

    # q out of range (q >= 2^h)
    single_msg = B.msg("base single-level")
    pub1, sig1, _ = B.single_real(*h5w8, single_msg)
    bad("inv-q-out-of-range-2h", "q-out-of-range", public=pub1, message=single_msg,
        signature=put32(sig1, 4, 32), params=[h5w8])
    bad("inv-q-out-of-range-max", "q-out-of-range", public=pub1, message=single_msg,
        signature=put32(sig1, 4, 0xFFFFFFFF), params=[h5w8])
    bad("inv-q-out-of-range-top", "q-out-of-range", signature=put32(sig2, topsig["off"], 32))

    # message changed
    bad("inv-message-bit-flip", "message-changed", message=flip(msg2, 0))
    bad("inv-message-extra-byte", "message-changed", message=msg2 + b"\x00")
    bad("inv-message-empty", "message-changed", message=b"")
    bad("inv-rfc-tc1-message-changed", "message-changed", public=tc1_pub,
        message=RFC_TC1_MESSAGE.replace(b"people", b"People"), signature=tc1_sig,
        params=two, source="rfc8554")

    # single bit flips
    flips = [("bottom-C", bottom["C_off"] + 3),
             ("bottom-y0", bottom["y_off"] + 5),
             ("bottom-y-last", bottom["y_off"] + (bottom["p"] - 1) * N + 31),
             ("bottom-path0", bottom["path_off"] + 1),
             ("bottom-path-last", bottom["path_off"] + (bottom["h"] - 1) * M + 16),
             ("top-C", topsig["C_off"]),
             ("top-y", topsig["y_off"] + 10 * N + 2),
             ("top-path", topsig["path_off"] + 2 * M + 9),
             ("embedded-public-I", embedded["off"] + 8 + 4),
             ("embedded-public-T1", embedded["off"] + 24 + 30)]
    for label, off in flips:
        bad(f"inv-bit-flip-{label}", "bit-flip", signature=flip(sig2, off))
    bad("inv-bit-flip-public-I", "bit-flip", public=flip(pub2, 12 + 7, 0x80))
    bad("inv-bit-flip-public-T1", "bit-flip", public=flip(pub2, 28 + 31, 0x80))

    # trailing bytes
    bad("inv-trailing-1-byte", "trailing-bytes", signature=sig2 + b"\x00")
    bad("inv-trailing-32-bytes", "trailing-bytes", signature=sig2 + B.drbg(32))
    bad("inv-public-trailing-byte", "trailing-bytes", public=pub2 + b"\x00")
    bad("inv-public-truncated", "truncated", public=pub2[:-1])

    # type codes
    bad("inv-unknown-lms-type-signature", "wrong-type",
        signature=put32(sig2, bottom["lms_off"], 0))
    bad("inv-unknown-lmots-type-signature", "wrong-type",
        signature=put32(sig2, bottom["off"] + 4, 0))
    bad("inv-unknown-lms-type-public", "wrong-type", public=put32(pub2, 4, 0xFFFFFFFF))
    bad("inv-unknown-lmots-type-public", "wrong-type", public=put32(pub2, 8, 0))
    bad("inv-unknown-lms-type-embedded-public", "wrong-type",
        signature=put32(sig2, embedded["off"], 0x1000))
    bad("inv-lms-type-mismatch-signature", "wrong-type",
        signature=put32(sig2, bottom["lms_off"], LMS_CODE["LMS_SHA256_M32_H10"]))
    bad("inv-lmots-type-mismatch-signature", "wrong-type",
        signature=put32(sig2, bottom["off"] + 4, LMOTS_CODE["LMOTS_SHA256_N32_W4"]))
    # public key declares W4, the (genuine) signatures and tree are W8:
    bad("inv-public-lmots-type-mismatch", "wrong-type",
        public=put32(pub2, 8, LMOTS_CODE["LMOTS_SHA256_N32_W4"]))
    # a whole tree whose leaf is W4 under a public key that says W8:
    cmsg = B.msg("lmots mismatch")
    public, sig = B.single_crafted(*h5w8, cmsg, sig_lmots="LMOTS_SHA256_N32_W4")
    bad("inv-lmots-type-mismatch-crafted", "wrong-type", public=public, message=cmsg,
        signature=sig, params=[h5w8], source="crafted")
    # a tree of height 5 presented under a public key that says H10:
    cmsg = B.msg("lms mismatch")
    public, sig = B.single_crafted(*h5w8, cmsg)
    bad("inv-lms-type-mismatch-crafted", "wrong-type", public=put32(public, 4, LMS_CODE["LMS_SHA256_M32_H10"]),
        message=cmsg, signature=sig, params=[h5w8], source="crafted")
    # genuine SHA-256/192 (RFC 9858 / SP 800-208) signature: not an RFC 8554 set
    m24 = pyhsslms.LmsPrivateKey(lms_type=pyhsslms.lms_sha256_m24_h5,
                                 lmots_type=pyhsslms.lmots_sha256_n24_w8)
    mmsg = B.msg("m24")
    bad("inv-unsupported-m24-n24", "unsupported-type", public=u32(1) + m24.publicKey().serialize(),
        message=mmsg, signature=u32(0) + B.sign_at(m24, mmsg, 3),
        params=[("LMS_SHA256_M24_H5", "LMOTS_SHA256_N24_W8")])

    # wrong key
    other_pub, other_sig = B.chain(two, msg2)
    bad("inv-wrong-key", "wrong-key", public=other_pub)
    # keep base's top signature, but splice in another chain's level-1 key and
    # its (genuine) signature of the message: the top never signed that key
    o_lv, _ = parse_hss_signature(other_sig)
    spliced = sig2[:embedded["off"]] + other_sig[o_lv[0]["pub"]["off"]:]
    bad("inv-wrong-key-spliced-level1", "wrong-key", signature=spliced)

    # more than 8 levels: genuine 9-level signature (pyhsslms makes and accepts it)
    name = "inv-too-many-levels-9"
    h5w4 = ("LMS_SHA256_M32_H5", "LMOTS_SHA256_N32_W4")
    public, sig = B.hss_private_key(9, *h5w4, B.msg(name), 0)
    bad(name, "too-many-levels", public=public, message=B.msg(name), signature=sig,
        params=[h5w4] * 9)
    print(f"  invalid done       {time.time() - t0:6.1f}s")

    assert h10w4_vector is not None
    return B.vectors, [h10w4_vector]


# ----------------------------------------------------------------------
# Checking
# ----------------------------------------------------------------------
def check(vectors, full=True):
    names = [v["name"] for v in vectors]
    assert len(names) == len(set(names)), "duplicate names"
    if full:
        assert PYHSSLMS_ACCEPTS <= set(names), PYHSSLMS_ACCEPTS - set(names)
    for v in vectors:
        public, message, sig = (bytes.fromhex(v[k]) for k in ("public", "message", "signature"))
        assert v["levels"] == len(v["lms"]) == len(v["lmots"]), v["name"]
        assert v["source"] in ("rfc8554", "pyhsslms", "crafted"), v["name"]
        strict, lib = strict_verify(public, message, sig), pyhsslms_accepts(public, message, sig)
        if v["valid"]:
            assert v["why"] == "", v["name"]
            assert strict, f"{v['name']}: reference verifier rejects a valid vector"
            assert lib, f"{v['name']}: pyhsslms rejects a valid vector"
            # the stated parameter sets are the ones in the bytes
            levels, _ = parse_hss_signature(sig)
            assert r32(public, 0) == v["levels"] == len(levels), v["name"]
            keys = [parse_lms_public(public, 4)[0]] + [lvl["pub"] for lvl in levels[:-1]]
            for i, (k, lvl) in enumerate(zip(keys, levels)):
                assert LMS_TYPES[k["lms"]][0] == v["lms"][i], v["name"]
                assert LMOTS_TYPES[k["ots"]][0] == v["lmots"][i], v["name"]
        else:
            assert v["why"], v["name"]
            assert not strict, f"{v['name']}: reference verifier accepts an invalid vector"
            if v["name"] in PYHSSLMS_ACCEPTS:
                assert lib, f"{v['name']}: expected pyhsslms to (wrongly) accept; update README"
            else:
                assert not lib, f"{v['name']}: pyhsslms accepts an invalid vector"


def write_json(path, data):
    path.write_text(json.dumps(data, indent=1) + "\n")


def check_files():
    vectors = json.loads(OUT.read_text())
    check(vectors)
    single = json.loads(OUT_H10W4.read_text())
    assert len(single) == 1 and single[0]["valid"]
    assert single[0]["lms"] == ["LMS_SHA256_M32_H10"] and single[0]["lmots"] == ["LMOTS_SHA256_N32_W4"]
    assert single[0]["source"] == "pyhsslms"
    check(single, full=False)
    n_valid = sum(v["valid"] for v in vectors)
    print(f"checked {len(vectors)} vectors ({n_valid} valid, {len(vectors) - n_valid} invalid, "
          f"{len(PYHSSLMS_ACCEPTS)} of them accepted by pyhsslms as expected); "
          f"{OUT.name} {OUT.stat().st_size} bytes, {OUT_H10W4.name} ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only re-check the JSON on disk")
    ap.add_argument("--seed", default=None, help="DRBG seed text (default: the built-in one)")
    args = ap.parse_args()
    assert pyhsslms.__version__ == "2.0.0", \
        f"written against pyhsslms 2.0.0, found {pyhsslms.__version__}: re-check PYHSSLMS_ACCEPTS"
    if not args.check:
        t0 = time.time()
        seed = DRBG_SEED if args.seed is None else args.seed.encode()
        vectors, single = build(seed)
        check(vectors)
        write_json(OUT, vectors)
        write_json(OUT_H10W4, single)
        print(f"generated in {time.time() - t0:.1f}s")
    check_files()


if __name__ == "__main__":
    main()
