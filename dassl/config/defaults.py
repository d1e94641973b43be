"""Dassl default configuration (the subset CoOp-style trainers read), one key per line.

Values are Dassl.pytorch 0.6.3's public defaults except ``TEST.EVALUATOR`` ("IQA"). yacs
type-checks later merges against these values, so ints stay ints and tuples stay tuples.
"""
from yacs.config import CfgNode as CN

_C = CN()

_C.VERSION = 1  # config schema version (Dassl)
_C.OUTPUT_DIR = "./output"  # logs, tensorboard, checkpoints, splits
_C.RESUME = ""  # directory to resume from; "" = OUTPUT_DIR
_C.SEED = -1  # >= 0: seed python/numpy/torch with it (train.py)
_C.USE_CUDA = True  # use the GPU when one is available
_C.VERBOSE = True  # print "Loading ..." lines and the dataset summary
_C.DETERMINISTIC = False  # deterministic algorithms, no cudnn.benchmark (slower, reproducible)

_C.INPUT = CN()
_C.INPUT.SIZE = (224, 224)  # (height, width) fed to the model
_C.INPUT.INTERPOLATION = "bilinear"  # resampling of resize/crop: bilinear | bicubic | nearest
_C.INPUT.TRANSFORMS = ()  # training augmentations, see dassl.data.transforms
_C.INPUT.NO_TRANSFORM = False  # True: datasets return raw PIL images
_C.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]  # per-channel mean for normalize (ImageNet)
_C.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]  # per-channel std for normalize (ImageNet)
_C.INPUT.CROP_PADDING = 4  # zero padding (px) of random_crop
_C.INPUT.RRCROP_SCALE = (0.08, 1.0)  # area-fraction range of random_resized_crop
_C.INPUT.COLORJITTER_B = 0.4  # colorjitter brightness
_C.INPUT.COLORJITTER_C = 0.4  # colorjitter contrast
_C.INPUT.COLORJITTER_S = 0.4  # colorjitter saturation
_C.INPUT.COLORJITTER_H = 0.1  # colorjitter hue
_C.INPUT.RGS_P = 0.2  # probability of randomgrayscale
_C.INPUT.GB_P = 0.5  # probability of gaussian_blur
_C.INPUT.GB_K = 21  # gaussian_blur kernel size (odd, px)

_C.DATASET = CN()
_C.DATASET.ROOT = ""  # directory holding the datasets
_C.DATASET.NAME = ""  # DATASET_REGISTRY key
_C.DATASET.SOURCE_DOMAINS = ()  # domain names (domain-generalisation datasets only)
_C.DATASET.TARGET_DOMAINS = ()  # domain names (domain-generalisation datasets only)
_C.DATASET.NUM_SHOTS = -1  # images per class for few-shot datasets; < 1 = all

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4  # loader worker processes (0 = load in the main process)
_C.DATALOADER.K_TRANSFORMS = 1  # > 1: each training image is augmented K times
_C.DATALOADER.RETURN_IMG0 = False  # also return the un-augmented image as "img0"
_C.DATALOADER.TRAIN_X = CN()
_C.DATALOADER.TRAIN_X.SAMPLER = "RandomSampler"  # labelled-train sampler
_C.DATALOADER.TRAIN_X.BATCH_SIZE = 32  # labelled-train batch size
_C.DATALOADER.TRAIN_X.N_DOMAIN = 0  # domains per batch (domain samplers only)
_C.DATALOADER.TRAIN_X.N_INS = 16  # instances per class (class samplers only)
_C.DATALOADER.TRAIN_U = CN()
_C.DATALOADER.TRAIN_U.SAME_AS_X = True  # unlabelled loader copies TRAIN_X's settings
_C.DATALOADER.TRAIN_U.SAMPLER = "RandomSampler"  # unlabelled-train sampler
_C.DATALOADER.TRAIN_U.BATCH_SIZE = 32  # unlabelled-train batch size
_C.DATALOADER.TRAIN_U.N_DOMAIN = 0  # domains per batch (domain samplers only)
_C.DATALOADER.TRAIN_U.N_INS = 16  # instances per class (class samplers only)
_C.DATALOADER.TEST = CN()
_C.DATALOADER.TEST.SAMPLER = "SequentialSampler"  # val/test sampler
_C.DATALOADER.TEST.BATCH_SIZE = 32  # val/test batch size

_C.MODEL = CN()
_C.MODEL.INIT_WEIGHTS = ""  # optional weights file for trainers that call load_pretrained_weights
_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = ""  # backbone name, e.g. CLIP "ViT-B/16"
_C.MODEL.HEAD = CN()
_C.MODEL.HEAD.NAME = ""  # optional head name (kept for the --head CLI flag)

_C.OPTIM = CN()
_C.OPTIM.NAME = "adam"  # adam | amsgrad | sgd | rmsprop | radam | adamw
_C.OPTIM.LR = 0.0003  # base learning rate
_C.OPTIM.WEIGHT_DECAY = 5e-4  # L2 (decoupled for adamw)
_C.OPTIM.MOMENTUM = 0.9  # sgd / rmsprop momentum
_C.OPTIM.SGD_DAMPNING = 0  # sgd dampening (Dassl spelling)
_C.OPTIM.SGD_NESTEROV = False  # sgd Nesterov momentum
_C.OPTIM.RMSPROP_ALPHA = 0.99  # rmsprop smoothing constant
_C.OPTIM.ADAM_BETA1 = 0.9  # adam-family beta1
_C.OPTIM.ADAM_BETA2 = 0.999  # adam-family beta2
_C.OPTIM.STAGED_LR = False  # NEW_LAYERS get LR, all other layers LR * BASE_LR_MULT
_C.OPTIM.NEW_LAYERS = ()  # child-module names trained at the full LR when STAGED_LR
_C.OPTIM.BASE_LR_MULT = 0.1  # LR multiplier of the other layers when STAGED_LR
_C.OPTIM.LR_SCHEDULER = "single_step"  # single_step | multi_step | cosine
_C.OPTIM.STEPSIZE = (-1,)  # step epochs; single_step uses the last (<= 0: MAX_EPOCH)
_C.OPTIM.GAMMA = 0.1  # LR factor at each step
_C.OPTIM.MAX_EPOCH = 10  # training epochs (also cosine T_max)
_C.OPTIM.WARMUP_EPOCH = -1  # warm-up epochs; > 0 enables warm-up
_C.OPTIM.WARMUP_TYPE = "linear"  # constant | linear
_C.OPTIM.WARMUP_CONS_LR = 1e-5  # LR during constant warm-up
_C.OPTIM.WARMUP_MIN_LR = 1e-5  # LR of the first linear warm-up epoch
_C.OPTIM.WARMUP_RECOUNT = True  # successor schedule restarts its epoch count after warm-up

_C.TRAIN = CN()
_C.TRAIN.CHECKPOINT_FREQ = 0  # keep a checkpoint every N epochs; <= 0: only the last is kept
_C.TRAIN.PRINT_FREQ = 10  # batches between log lines

_C.TEST = CN()
_C.TEST.EVALUATOR = "IQA"  # EVALUATOR_REGISTRY key: IQA | Classification
_C.TEST.PER_CLASS_RESULT = False  # Classification: print per-class accuracy
_C.TEST.COMPUTE_CMAT = False  # Classification: save a confusion matrix to OUTPUT_DIR/cmat.pt
_C.TEST.NO_TEST = False  # skip all evaluation
_C.TEST.SPLIT = "test"  # split of the final evaluation: test | val
_C.TEST.FINAL_MODEL = "last_step"  # last_step | best_val (select the best epoch by the first metric)
_C.TEST.ALLOW_SELECTION_ON_TEST = False  # best_val without a val split selects on test (paper protocol)
_C.TEST.NUM_CROPS = 1  # test crops per image: 1 = centre crop; C > 1 = native-resolution grid, mean

_C.TRAINER = CN()
_C.TRAINER.NAME = ""  # TRAINER_REGISTRY key
